"""Runs CPython's own unittest modules against the workspace's copy of the library.

This file is not imported by agentd: its text is shipped as a support file of a task's
``test_spec`` and runs *inside the jail* as ``python -S run_tests.py MODULE...`` from the workspace.
It must therefore use nothing but the interpreter's core: it is started with ``-S`` (no
``site``: the venv's ``.pth`` hooks would import ``re``, ``enum``, ``pathlib`` … from the
installed library before the workspace could shadow them) and it builds module specs with
the frozen import machinery that is already loaded, so that every library module it does
not need is imported only after the overlay is in place.

The overlay is a meta-path finder consulted before the normal one. A module ``a.b.c``
is served from ``WORKSPACE/a/b/c.py`` (or ``…/c/__init__.py``) when that file exists, then
from the support directory (the shipped test modules, ``test/test_x.py``), else the
installed library answers as usual. A workspace needs no ``__init__.py`` of its own: a task
holds just the files it changes, and the rest of their package comes from the library.
"""
# os.path, not pathlib: pathlib imports library modules (re, fnmatch …) the overlay shadows.
# ruff: noqa: PTH100, PTH103, PTH109, PTH113, PTH118, PTH120

from __future__ import annotations  # annotations stay strings: nothing is imported for them

import _frozen_importlib_external as _external
import os
import sys

TYPE_CHECKING = False  # ``typing`` itself would import half the library before the overlay
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType


class Overlay:
    """Serves modules from the given roots, in order, before ``sys.path`` is searched."""

    def __init__(self, roots: list[str]) -> None:
        self.roots = roots

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        rel = os.path.join(*name.split("."))
        for root in self.roots:
            package = os.path.join(root, rel, "__init__.py")
            if os.path.isfile(package):
                # Submodules the overlay lacks still come from the real package directory.
                real = _external.PathFinder.find_spec(name, path)
                dirs = [os.path.join(root, rel)]
                if real is not None and real.submodule_search_locations:
                    dirs += list(real.submodule_search_locations)
                return _external.spec_from_file_location(
                    name, package, submodule_search_locations=dirs)
            module = os.path.join(root, rel + ".py")
            if os.path.isfile(module):
                return _external.spec_from_file_location(name, module)
        return None


def main(argv: list[str]) -> int:
    workspace, modules = os.getcwd(), argv[1:]  # the jail starts commands in the workspace
    support = os.path.dirname(os.path.abspath(__file__))
    del sys.path[0]  # the support directory: reached only through the overlay
    sys.meta_path.insert(0, Overlay([workspace, support]))
    # Tests write scratch files into the current directory: keep them out of the workspace.
    scratch = os.path.join(os.environ.get("TMPDIR", "/tmp"), "agentd-tests")  # noqa: S108
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    import unittest

    from test import support as test_support  # type: ignore[import-not-found]

    test_support.use_resources = []  # network, cpu-heavy … resources: skipped, not tried
    program = unittest.main(module=None, argv=["run_tests", *modules], exit=False)
    result = program.result
    ran = result.testsRun - len(result.skipped)  # a spec whose tests all skip checks nothing
    return 0 if result.wasSuccessful() and ran > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
