"""The installed package: --version on every command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

COMMANDS = {  # console script -> the module of its main()
    "ser-live": "ser_live.cli",
    "ser-train": "ser_live.train.cli",
    "ser-evaluate": "ser_live.train.evaluate_cli",
}


def project_version() -> str:
    """The version pyproject.toml declares (its one definition)."""
    found = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert found, "no version in pyproject.toml"
    return found.group(1)


@pytest.mark.parametrize("command", COMMANDS)
def test_version_prints_the_distribution_and_its_version(command):
    exe = Path(sys.executable).with_name(command)
    assert exe.is_file(), f"{command} is not installed beside {sys.executable}"
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert re.fullmatch(r"ser-live \d+\.\d+\.\d+\n", r.stdout), r.stdout
    assert r.stdout == f"ser-live {project_version()}\n"
