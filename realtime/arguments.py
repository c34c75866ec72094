"""The command-line parser every entry point uses: a usage error is one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (not usage + message), exit status 2."""

    def error(self, message: str) -> None:
        sys.stderr.write(f"{self.prog}: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)
