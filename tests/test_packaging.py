"""The installed package: --version on every command, the trainer's commands without the train extra, and
ser-live in an environment that also has PyPI's realtime (plain and editable install)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

COMMANDS = {  # console script -> the module of its main()
    "ser-live": "ser_live.cli",
    "ser-train": "ser_live.train.cli",
    "ser-evaluate": "ser_live.train.evaluate_cli",
    "ser-report": "ser_live.report",
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


# ------------------------------------------------------------------------- beside PyPI's realtime

PIP_TIMEOUT = 300


def _pypi_reachable() -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen("https://pypi.org/simple/realtime/", timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def _pip_install(python: Path, *args: str, cwd: Path) -> None:
    """pip of this environment installing into the one of ``python`` (which has no pip of its own)."""
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-input", "--disable-pip-version-check",
           *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=PIP_TIMEOUT)
    if r.returncode != 0:
        if not os.environ.get("CI") and not _pypi_reachable():
            pytest.skip("PyPI is unreachable, and this test installs PyPI's realtime (and setuptools to build ser-live)")
        pytest.fail(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")


def _hidden(name: str) -> bool:
    """Entries of this environment's site-packages the test environment must not see: any ser-live install
    (its editable finder would answer for ser_live), anything at the names ser-live used to install at the top
    level or PyPI's realtime, pip, and .pth files (not processed from an added path anyway)."""
    base = re.split(r"[-.]", name, maxsplit=1)[0].lower()
    return "ser_live" in name.lower().replace("-", "_") or base in {"realtime", "train", "models", "pip"} \
        or name.endswith(".pth") or name == "__pycache__"


@pytest.fixture(scope="module")
def venv_with_realtime(tmp_path_factory) -> tuple[Path, Path]:
    """A fresh virtual environment with PyPI's realtime installed, which sees this environment's other
    packages (numpy, onnxruntime, ...) through a .pth file, so nothing heavy is installed again:
    (its python, its site-packages)."""
    root = tmp_path_factory.mktemp("collision")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = root / "deps"
    deps.mkdir()
    for folder in dict.fromkeys(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))):
        if Path(folder).is_dir():
            for entry in Path(folder).iterdir():
                if not _hidden(entry.name) and not (deps / entry.name).exists():
                    (deps / entry.name).symlink_to(entry)
    (site / "outer-packages.pth").write_text(f"{deps}\n")
    _pip_install(python, "realtime", cwd=root)
    return python, site


def _plain_source(dest: Path) -> Path:
    """What a plain install builds from, copied out of the repository (an in-tree build would leave
    build/ and its stale files in the repository)."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, dest / name)
    for folder in ("realtime", "train", "models", "experiments"):  # experiments/ is there, and must not be installed
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


_PROBE = """
import importlib.metadata as md, json
import realtime
import ser_live, ser_live.train
from ser_live.model import EmotionModel
from ser_live.models import DEFAULT_MODEL

model = EmotionModel(DEFAULT_MODEL)
print(json.dumps({
    "realtime": realtime.__file__,
    "realtime_dist": str(md.distribution("realtime").locate_file("realtime/__init__.py")),
    "ser_live": ser_live.__file__, "train": ser_live.train.__file__, "model": str(DEFAULT_MODEL),
    "labels": model.labels, "files": [str(f) for f in md.files("ser-live")],
}))
"""


@pytest.mark.parametrize("mode", ["plain", "editable"])
def test_ser_live_beside_pypi_realtime(mode, venv_with_realtime, tmp_path):
    """ser-live installs only ser_live, so PyPI's realtime (a different project) keeps its name, and both
    import and work in one environment, after a plain and after an editable install."""
    python, site = venv_with_realtime
    if mode == "plain":
        src = tmp_path / "src"
        src.mkdir()
        _pip_install(python, "--no-deps", str(_plain_source(src)), cwd=tmp_path)
    else:
        _pip_install(python, "--no-deps", "-e", str(REPO), cwd=tmp_path)

    probe = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout)
    assert Path(found["realtime"]) == Path(found["realtime_dist"]) == site / "realtime" / "__init__.py"
    if mode == "plain":  # this environment's copy, not the source tree nor the running environment's install
        assert Path(found["ser_live"]) == site / "ser_live" / "__init__.py"
        assert Path(found["train"]) == site / "ser_live" / "train" / "__init__.py"
        assert Path(found["model"]) == site / "ser_live" / "models" / "ser-default.onnx"
    else:
        assert Path(found["ser_live"]) == REPO / "realtime" / "__init__.py"
        assert Path(found["train"]) == REPO / "train" / "__init__.py"
        assert Path(found["model"]) == REPO / "models" / "ser-default.onnx"
    assert len(found["labels"]) >= 2
    tops = {Path(f).parts[0] for f in found["files"]}
    assert not tops & {"realtime", "train", "models"}, tops  # nothing installed under the folders' names
    assert not [f for f in found["files"] if "experiments" in Path(f).parts], tops  # the experiments are not the product

    ser_live = python.parent / "ser-live"
    version = subprocess.run([str(ser_live), "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert version.stdout == f"ser-live {project_version()}\n", version.stderr
    run = subprocess.run([str(ser_live), "--file", str(REPO / "examples" / "sample.flac"), "--speed", "0", "--plain"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith(str(REPO / "examples" / "sample.flac"))]
    assert lines and f"session: {len(lines)} utterances" in run.stderr, run.stderr
