"""``ser-live --session``: which replayed files are one speaker, whose VAD gain and speaker normalisation
carry on from file to file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import data_dir, join_with_pauses, logged_rows, run_cli
from ser_live.replay import speaker_of


def one_speaker(tmp: Path, actor: str, seed: int) -> tuple[Path, Path, list[float]]:
    """Eight clips of one RAVDESS actor joined by pauses into one stream, and the same stream cut in the
    middle of every pause into a folder of files (sorted in stream order): (stream, folder, file offsets in s)."""
    clips = sorted((data_dir() / "ravdess" / actor).glob("*.flac"))[::7][:8]
    x, spans = join_with_pauses(clips, seed=seed, pause_s=(2.0, 3.0))  # cut far from any voice
    frame = 480  # cut on the segmenter's 30 ms frame grid, so that each file is heard in the stream's frames
    cuts = [0] + [int((end + start) / 2 * 16000) // frame * frame for (_, end), (start, _) in zip(spans, spans[1:])] + [x.size]
    folder = tmp / actor
    folder.mkdir()
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        sf.write(folder / f"{i:02d}.wav", x[a:b], 16000, subtype="FLOAT")
    stream = tmp / f"{actor}-stream.wav"
    sf.write(stream, x, 16000, subtype="FLOAT")
    return stream, folder, [c / 16000 for c in cuts[:-1]]


def scored(paths: list[Path], tmp: Path, capsys, *options: str) -> list[dict]:
    """The log of the fast model on ``paths`` (a new log file each time)."""
    return logged_rows(paths, tmp / f"log{len(list(tmp.glob('log*.csv')))}.csv", capsys, "--model", "fast", *options)


def probs(rows: list[dict]) -> np.ndarray:
    return np.array([[float(v) for k, v in r.items() if k.startswith("p_")] for r in rows])


def test_session_one_scores_a_folder_like_its_files_joined_into_one_stream(tmp_path, capsys):
    stream, folder, offsets = one_speaker(tmp_path, "Actor_05", seed=7)
    joined = scored([stream], tmp_path, capsys)
    one = scored([folder], tmp_path, capsys, "--session", "one")
    per_file = scored([folder], tmp_path, capsys)
    assert len(one) == len(joined) >= 8
    np.testing.assert_allclose(probs(one), probs(joined), atol=2e-4, rtol=0)  # the log keeps 4 decimals
    # times stay per file: each row is timed from the start of its own file
    start = {str(folder / f"{i:02d}.wav"): t for i, t in enumerate(offsets)}
    for r, j in zip(one, joined):
        assert float(r["end_s"]) <= sf.info(r["source"]).duration + 1e-3
        assert float(r["start_s"]) + start[r["source"]] == pytest.approx(float(j["start_s"]), abs=2e-3)
    # a new speaker for every file: each file's utterance normalised as a speaker's first
    assert len(per_file) != len(one) or np.abs(probs(per_file) - probs(one)).max() > 0.02


def test_session_per_folder_is_one_speaker_per_folder(tmp_path, capsys):
    folders = [one_speaker(tmp_path, actor, seed)[1] for actor, seed in (("Actor_06", 1), ("Actor_07", 2))]
    per_folder = scored(folders, tmp_path, capsys, "--session", "per-folder")
    each = scored([folders[0]], tmp_path, capsys, "--session", "one") + scored([folders[1]], tmp_path, capsys, "--session", "one")
    assert [(r["source"], r["start_s"], r["end_s"]) for r in per_folder] == [(r["source"], r["start_s"], r["end_s"]) for r in each]
    np.testing.assert_allclose(probs(per_folder), probs(each), atol=1e-4, rtol=0)
    one = scored(folders, tmp_path, capsys, "--session", "one")  # the second actor normalised against the first
    n = sum(r["source"].startswith(str(folders[0])) for r in one)
    assert np.abs(probs(one) - probs(per_folder))[n:].max() > 0.02


def test_speaker_of_each_session_mode():
    files = [Path("a/1.wav"), Path("a/2.wav"), Path("b/1.wav")]
    assert len({speaker_of(f, i, "per-file") for i, f in enumerate(files)}) == 3
    assert [speaker_of(f, i, "per-folder") for i, f in enumerate(files)] == [Path("a"), Path("a"), Path("b")]
    assert len({speaker_of(f, i, "one") for i, f in enumerate(files)}) == 1
    with pytest.raises(ValueError, match="session must be one of"):
        speaker_of(files[0], 0, "per-day")


def test_session_is_refused_for_the_microphone(capsys):
    code, _, err = run_cli(["--session", "one"], capsys)
    assert code == 2 and "--session is for --file" in err
