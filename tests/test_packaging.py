"""The installed package: --version on every command, and the trainer's commands without the train extra."""

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


def _without(blocked: tuple[str, ...], module: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``module``'s main() in a fresh interpreter in which the ``blocked`` modules cannot be imported."""
    code = (f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
            f"from {module} import main\nsys.exit(main())")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


TRAIN_EXTRA = ("sklearn", "skl2onnx", "onnx", "matplotlib", "threadpoolctl", "scipy")


@pytest.mark.parametrize("blocked", [
    TRAIN_EXTRA,  # installed without the extra
    ("matplotlib",),  # imported only late in a run: still reported before any work
    ("sklearn.pipeline",),  # scikit-learn there, but a module of it fails to import
], ids=["no-extra", "no-matplotlib", "broken-sklearn"])
@pytest.mark.parametrize("command", ["ser-train", "ser-evaluate"])
def test_trainer_without_its_extra_says_what_to_install(command, blocked, tmp_path):
    r = _without(blocked, COMMANDS[command], "--data", str(tmp_path), "--out", str(tmp_path / "m.onnx"))
    assert r.returncode == 1, r.stderr
    assert r.stdout == "" and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"{command}: ") and "pip install 'ser-live[train]'" in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_trainer_reports_other_import_errors_as_they_are():
    """Only a missing module of the train extra is turned into the install hint; a missing module of
    ser-live's own is a bug and shows as one."""
    r = _without(("ser_live.train.model",), COMMANDS["ser-train"], "--help")
    assert r.returncode == 1 and "Traceback" in r.stderr and "ser_live.train.model" in r.stderr
    assert "pip install" not in r.stderr


def test_ser_live_runs_without_the_train_extra():
    """The runtime imports nothing of the trainer's dependencies."""
    clip = REPO / "examples" / "sample.flac"
    r = _without(TRAIN_EXTRA, "ser_live.cli", "--file", str(clip), "--speed", "0", "--plain")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(str(clip)) >= 1 and "Traceback" not in r.stderr
