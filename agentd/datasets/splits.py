"""Leak-free train/dev/test splits.

The unit of assignment is a *group* (a top-level package or module of a dataset, or a
whole sdist project): every task whose files come from one group lands in the same split,
so no source file or package is seen in two splits. Groups are visited in a seeded hash
order and each goes to the split furthest below its target share of tasks, which keeps the
shares close to the configured ratios and the result a pure function of the seed.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "dev", "test")


def _order(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\0{group}".encode()).hexdigest()


def assign_splits(group_sizes: dict[str, int], ratios: dict[str, float], seed: int,
                  ) -> dict[str, str]:
    """``{group: split}`` for every group in ``group_sizes`` (tasks per group)."""
    total_ratio = sum(ratios.get(s, 0.0) for s in SPLITS)
    total = sum(group_sizes.values())
    target = {s: ratios.get(s, 0.0) / total_ratio * total for s in SPLITS}
    filled = dict.fromkeys(SPLITS, 0)
    out: dict[str, str] = {}
    for group in sorted(group_sizes, key=lambda g: _order(g, seed)):
        split = max(SPLITS, key=lambda s: (target[s] - filled[s], -SPLITS.index(s)))
        out[group] = split
        filled[split] += group_sizes[group]
    return out
