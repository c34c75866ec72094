"""The trainer (``ser-train``, ``ser-evaluate``). Its dependencies are the ``train`` extra, which the
runtime does without: ``pip install 'ser-live[train]'``."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from typing import Iterator

#: the top-level modules of the train extra's packages (pyproject.toml) that the trainer imports
EXTRA_MODULES = ("sklearn", "skl2onnx", "onnx", "matplotlib", "threadpoolctl", "scipy")
INSTALL = "pip install 'ser-live[train]'"


@contextlib.contextmanager
def needs_extra(prog: str) -> Iterator[None]:
    """Around a command's module-level imports. When a module of the train extra is not installed
    (checked first, since some are imported only later in a run) or fails to import in the body, the
    command ends here: one line on stderr saying what to install, exit status 1. Any other
    ImportError propagates."""
    for name in EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:
            found = False
        if not found:
            _refuse(prog, f"No module named {name!r}")
    try:
        yield
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in EXTRA_MODULES:
            raise
        _refuse(prog, str(exc))


def _refuse(prog: str, reason: str) -> None:
    sys.stderr.write(f"{prog}: the trainer's dependencies are not installed ({reason}); install them with: {INSTALL}\n")
    raise SystemExit(1)
