"""``python -m agentd.state dump TASK_ID …``: the same command as ``agentd state dump``."""

from __future__ import annotations

import sys

from agentd.cli import main

if __name__ == "__main__":
    sys.exit(main(["state", *sys.argv[1:]]))
