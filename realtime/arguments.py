"""The command-line parser every entry point uses: a usage error is one line on stderr, exit 2, and
``--version`` prints the installed version."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2
EXIT_OUTPUT_CLOSED = 141  # as a command killed by SIGPIPE: the reader of stdout closed it (``| head``)
DISTRIBUTION = "ser-live"


def version_text() -> str:
    """``ser-live X.Y.Z``: the version of the installed distribution (its metadata, read only when asked:
    importlib.metadata costs start-up time)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{DISTRIBUTION} {version(DISTRIBUTION)}"
    except PackageNotFoundError:
        return f"{DISTRIBUTION} (version unknown: not installed)"


class _Version(argparse.Action):
    def __init__(self, option_strings, dest="version", default=argparse.SUPPRESS, help="print the version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        sys.stdout.write(version_text() + "\n")
        parser.exit()


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (not usage + message), exit status 2,
    with a ``--version`` option."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action=_Version)

    def error(self, message: str) -> None:
        sys.stderr.write(f"{self.prog}: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)
