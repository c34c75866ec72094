"""ser-batch on a real local Ray (2 CPUs) and real clips: the live path's answers, queryable output, reruns
that score only what is new or changed, bad files reported and skipped, Ctrl-C and crashes losing nothing."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, logged_rows, real_clips

ray = pytest.importorskip("ray", reason="ser-batch needs the scale extra")
pq = pytest.importorskip("pyarrow.parquet")

from ser_live import batch  # noqa: E402
from ser_live.batch_scorer import FileJob, FileOutcome  # noqa: E402
from ser_live.batch_store import OutputFolder, StoreError, header  # noqa: E402
from ser_live.events import Result  # noqa: E402
from ser_live.replay import replay_files  # noqa: E402

SAMPLE = REPO / "examples" / "sample.flac"
#: no commit (and so no progress line on stderr) before the end, however slow the machine: stderr holds only errors
QUIET = ["--checkpoint-s", "3600"]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of 2 CPUs for the in-process runs of this module (ser-batch uses it as it finds it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def run_batch(argv: list[str], capsys) -> tuple[int, str, str]:
    code = batch.run(argv)
    out, err = capsys.readouterr()
    return code, out, err


def copy_clips(folder: Path, clips: list[Path]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for c in clips:
        shutil.copy(c, folder / c.name)
        out.append(folder / c.name)
    return sorted(out)


def parquet_rows(out: Path) -> dict[str, list[dict]]:
    """The Parquet utterances by source, each file's rows in time order."""
    table = pq.read_table(out / "utterances")  # Hive-partitioned by folder
    rows: dict[str, list[dict]] = {}
    for r in table.to_pylist():
        rows.setdefault(r["source"], []).append(r)
    return {k: sorted(v, key=lambda r: r["start_s"]) for k, v in rows.items()}


def assert_same_utterances(rows: list[dict], expected: list[tuple[float, float, np.ndarray]], labels: list[str],
                           tol: float) -> None:
    assert len(rows) == len(expected)
    for r, (start, end, probs) in zip(rows, expected):
        assert abs(r["start_s"] - start) <= 1e-6 and abs(r["end_s"] - end) <= 1e-6
        got = np.array([float(r[f"p_{label}"]) for label in labels])
        assert np.abs(got - probs).max() <= tol, (r["source"], got, probs)


def test_batch_gives_the_live_paths_utterances(tmp_path, local_ray, default_model, capsys):
    """Per file, ser-batch's utterances are those the live pipeline gives at --speed 0 (to 1e-5) and those
    ser-live --log writes (to its 4 decimals), for clips of both corpora and a multi-utterance recording."""
    files = copy_clips(tmp_path / "calls" / "a", real_clips(3, 3)) + copy_clips(tmp_path / "calls" / "b", [SAMPLE])
    code, out, err = run_batch([str(tmp_path / "calls"), "--out", str(tmp_path / "out"), "--cpus", "2", *QUIET], capsys)
    assert code == 0, err
    assert "scored 7 files" in out and err == ""
    rows = parquet_rows(tmp_path / "out")
    labels = default_model.labels
    live: dict[str, list] = {}
    for item in replay_files(default_model, files, speed=0):
        if isinstance(item, Result) and item.job.final:
            live.setdefault(item.job.source, []).append((item.job.start_s, item.job.end_s, item.probs))
    assert set(rows) == set(live) == {str(f) for f in files}
    assert len(rows[str(files[-1])]) >= 5  # the sample holds several utterances
    for source, expected in live.items():
        assert_same_utterances(rows[source], expected, labels, 1e-5)
    logged = logged_rows(files, tmp_path / "live.csv", capsys)
    by_source: dict[str, list] = {}
    for r in logged:
        by_source.setdefault(r["source"], []).append(
            (float(r["start_s"]), float(r["end_s"]), np.array([float(r[f"p_{x}"]) for x in labels])))
    for source, expected in by_source.items():
        assert_same_utterances(rows[source], expected, labels, 5e-5 + 1e-7)  # the log's rounding
    # the CSV has the log's columns plus the folder; the Parquet partition decodes to the same folder
    with open(tmp_path / "out" / "utterances.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["source", "folder", *list(logged[0])[1:]]
    assert len(table) == sum(map(len, rows.values()))
    assert {r["folder"] for r in table} == {"calls/a", "calls/b"}
    assert set(pq.read_table(tmp_path / "out" / "utterances").column("folder").to_pylist()) == {"calls/a", "calls/b"}
    # ser-report draws the CSV like a session log: a section per file
    from ser_live.report import read_log, sections
    assert {s.source for s in sections(read_log(tmp_path / "out" / "utterances.csv"))} == set(rows)
    # the per-file summary: durations, utterance counts and time per emotion add up
    files_table = pq.read_table(tmp_path / "out" / "files.parquet").to_pylist()
    assert len(files_table) == 7
    for f in files_table:
        assert f["utterances"] == len(rows[f["source"]])
        assert f["speech_s"] == pytest.approx(sum(r["end_s"] - r["start_s"] for r in rows[f["source"]]))
        assert f["speech_s"] == pytest.approx(sum(f[f"s_{x}"] for x in labels))
        assert 0 < f["speech_s"] <= f["duration_s"] + 1e-6


def test_per_folder_sessions_carry_the_speaker_as_ser_live_does(tmp_path, local_ray, fast_model, capsys):
    """With --session per-folder the fast model's speaker normalisation runs on from file to file within a
    folder, as in ser-live --session per-folder, and the results differ from per-file scoring."""
    clips = real_clips(6, 0)
    files = copy_clips(tmp_path / "src" / "one", clips[:3]) + copy_clips(tmp_path / "src" / "two", clips[3:])
    scored = {}
    for session in ("per-folder", "per-file"):
        out = tmp_path / f"out-{session}"
        code, _, err = run_batch([str(tmp_path / "src"), "--out", str(out), "--model", "fast", "--session", session],
                                 capsys)
        assert code == 0, err
        scored[session] = parquet_rows(out)
        logged = logged_rows(files, tmp_path / f"{session}.csv", capsys, "--model", "fast", "--session", session)
        for source in scored[session]:
            expected = [(float(r["start_s"]), float(r["end_s"]),
                         np.array([float(r[f"p_{x}"]) for x in fast_model.labels])) for r in logged if r["source"] == source]
            assert_same_utterances(scored[session][source], expected, fast_model.labels, 5e-5 + 1e-7)
    later = str(files[2])  # the third file of a folder: two earlier utterances of its speaker heard
    a = [r["p_neutral"] for r in scored["per-folder"][later]]
    b = [r["p_neutral"] for r in scored["per-file"][later]]
    assert a != b


def test_a_rerun_scores_only_new_and_changed_files(tmp_path, local_ray, default_model, capsys):
    clips = real_clips(4, 2)
    src = tmp_path / "src"
    files = copy_clips(src, clips[:5])
    out = tmp_path / "out"
    code, printed, err = run_batch([str(src), "--out", str(out)], capsys)
    assert code == 0 and "scored 5 files" in printed, err
    before = (out / "utterances.csv").read_text()

    code, printed, _ = run_batch([str(src), "--out", str(out)], capsys)
    assert code == 0 and "nothing to score" in printed
    assert (out / "utterances.csv").read_text() == before

    shutil.copy(clips[5], files[0])  # changed: another clip's audio under the same name
    os.utime(files[0], ns=(time.time_ns(), time.time_ns() + 10**9))
    shutil.copy(SAMPLE, src / "new.flac")  # new
    code, printed, err = run_batch([str(src), "--out", str(out)], capsys)
    assert code == 0, err
    assert "scored 2 files" in printed and "4 already scored" in printed
    rows = parquet_rows(out)
    assert len(rows) == 6
    fresh = replay_files(default_model, [files[0], src / "new.flac"], speed=0)
    for path in (files[0], src / "new.flac"):
        expected = [(r.job.start_s, r.job.end_s, r.probs) for r in fresh
                    if isinstance(r, Result) and r.job.final and r.job.source == str(path)]
        assert_same_utterances(rows[str(path)], expected, default_model.labels, 1e-5)  # old rows gone, no duplicates
    with open(out / "utterances.csv") as f:
        assert len(list(csv.DictReader(f))) == sum(map(len, rows.values()))
    assert len(pq.read_table(out / "files.parquet")) == 6


def test_bad_files_go_to_the_errors_table_and_the_rest_is_scored(tmp_path, local_ray, capsys):
    src = tmp_path / "src"
    good = copy_clips(src, real_clips(2, 1))
    (src / "garbage.wav").write_bytes(os.urandom(3000))
    (src / "empty.flac").write_bytes(b"")
    code, printed, err = run_batch([str(src), "--out", str(tmp_path / "out"), "--model", "fast", *QUIET], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("ser-batch: ") and "(skipped)" in line for line in lines), err
    assert "Traceback" not in err and "scored 3 files" in printed and "2 failed" in printed
    errors = pq.read_table(tmp_path / "out" / "errors.parquet").to_pylist()
    assert sorted(Path(e["source"]).name for e in errors) == ["empty.flac", "garbage.wav"]
    assert all(e["reason"] for e in errors)
    with open(tmp_path / "out" / "errors.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    assert set(parquet_rows(tmp_path / "out")) == {str(p) for p in good}


def test_a_file_that_crashes_its_actor_goes_to_errors_and_the_rest_is_scored(tmp_path, local_ray, monkeypatch, capsys):
    """A file whose scoring kills the actor's process (as a crash in a native decoder would): Ray restarts the
    actor and retries, then ser-batch scores the block's units one by one, so only that file is lost."""
    import ser_live.batch_scorer as scorer

    class CrashingScorer(scorer.Scorer):  # defined here, so Ray ships it to the actors by value
        def __call__(self, batch):
            if any(Path(f["key"]).name == "0-crash.flac" for unit in batch.column("files").to_pylist() for f in unit):
                os.kill(os.getpid(), signal.SIGSEGV)
            return super().__call__(batch)

    monkeypatch.setattr(scorer, "Scorer", CrashingScorer)
    src = tmp_path / "src"
    good = copy_clips(src, real_clips(3, 3))
    shutil.copy(good[0], src / "0-crash.flac")
    # one actor: four blocks of about two files; the crashing file sorts first, so its block holds another
    code, printed, err = run_batch([str(src), "--out", str(tmp_path / "out"), "--model", "fast", "--cpus", "1",
                                    *QUIET], capsys)
    assert code == 1, err
    assert err.count("\n") == 1 and "0-crash.flac: the worker scoring it stopped" in err, err
    assert "scored 6 files" in printed and "1 failed" in printed
    scored = {r["source"] for r in pq.read_table(tmp_path / "out" / "files.parquet").to_pylist()}
    assert scored == {str(p) for p in good}
    assert [Path(e["source"]).name for e in pq.read_table(tmp_path / "out" / "errors.parquet").to_pylist()] == ["0-crash.flac"]


def test_an_output_folder_of_other_settings_is_refused(tmp_path, local_ray, capsys):
    src = copy_clips(tmp_path / "src", real_clips(1, 0))[0].parent
    assert run_batch([str(src), "--out", str(tmp_path / "out"), "--model", "fast"], capsys)[0] == 0
    code, _, err = run_batch([str(src), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1 and "other settings (model fast)" in err
    code, _, err = run_batch([str(tmp_path / "nothing-here"), "--out", str(tmp_path / "o2")], capsys)
    assert code == 2 and "no such file or folder" in err and err.count("\n") == 1


# -- the output folder's commit protocol, without Ray

def _outcome(key: str, n: int, labels: list[str]) -> FileOutcome:
    probs = [np.eye(len(labels))[i % len(labels)].tolist() for i in range(n)]
    return FileOutcome(FileJob(key, key, "f", 10, 1), 3.0, [float(i) for i in range(n)], [i + 0.5 for i in range(n)],
                       [1.0] * n, [time.time()] * n, probs)


def test_a_crash_between_writing_and_committing_leaves_no_trace(tmp_path):
    labels = ["a", "b"]
    head = header("m", "0" * 64, labels, "per-file", {})
    store = OutputFolder(tmp_path, head)
    store.commit([_outcome("/x.wav", 2, labels)])
    store.close()
    piece = next((tmp_path / "utterances").glob("*/part-000001.parquet"))
    shutil.copy(piece, piece.with_name("part-000002.parquet"))  # written, never committed
    with open(tmp_path / "manifest.jsonl", "a") as f:
        f.write('{"part": "part-000002", "fil')  # a line cut short
    store = OutputFolder(tmp_path, head)
    assert not piece.with_name("part-000002.parquet").exists()
    assert [p["part"] for p in store.parts] == ["part-000001"]
    assert store.is_scored(FileJob("/x.wav", "/x.wav", "f", 10, 1))
    assert not store.is_scored(FileJob("/x.wav", "/x.wav", "f", 11, 1))  # changed size
    store.commit([_outcome("/y.wav", 3, labels)])
    store.export()
    assert [json.loads(line).get("part") for line in (tmp_path / "manifest.jsonl").read_text().splitlines()[1:]] \
        == ["part-000001", "part-000002"]
    assert len(pq.read_table(tmp_path / "utterances")) == 5
    with pytest.raises(StoreError, match="another ser-batch is writing"):
        OutputFolder(tmp_path, head)
    store.close()
    with pytest.raises(StoreError, match="other settings"):
        OutputFolder(tmp_path, header("m2", "1" * 64, labels, "per-file", {}))


# -- the installed command in a subprocess: Ctrl-C, SIGTERM, and no Ray installed

def _stopped_after_first_commit(tmp_path, stop) -> tuple[list[str], int, int]:
    """``ser-batch`` on 70 real clips, sent a signal (``stop(proc)``) once it committed its first results: the
    command, the clips it was given and how many it had scored when it stopped."""
    src = tmp_path / "src"
    src.mkdir()
    clips = real_clips(20, 20) * 2
    for i, clip in enumerate(clips):
        shutil.copy(clip, src / f"{i:03d}{clip.suffix}")
    command = [sys.executable, "-c", "from ser_live import batch; batch.main()", str(src), "--model", "fast", "--cpus", "2"]
    proc = subprocess.Popen([*command, "--out", str(tmp_path / "out"), "--checkpoint-s", "0.5"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    manifest = tmp_path / "out" / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 2:  # the header and a part
            break
        time.sleep(0.05)
    stop(proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "rerun the same command" in err and "Traceback" not in err
    assert f"/{len(clips)} files, " in err and "x real time" in err  # a progress line at each commit
    # the summary alone: the driver lived to the end, and Ray's messages (actors stopped, tasks retried) stay off stdout
    assert out.startswith("ser-batch: scored ") and out.count("\n") == 1, out
    stopped = len(pq.read_table(tmp_path / "out" / "files.parquet"))
    assert 0 < stopped < len(clips)
    return command, len(clips), stopped


def test_sigterm_stops_like_ctrl_c(tmp_path):
    """SIGTERM (``kill``, a job scheduler) to the driver alone: the same clean stop as Ctrl-C, not the immediate
    exit Ray's own SIGTERM handler would make."""
    _stopped_after_first_commit(tmp_path, lambda proc: proc.send_signal(signal.SIGTERM))


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes_the_job(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) after the first commit: exit 130 with a
    line saying what is left; the rerun scores only the rest, and the result is a clean run's."""
    command, n_clips, stopped = _stopped_after_first_commit(tmp_path, lambda proc: os.killpg(proc.pid, signal.SIGINT))
    again = subprocess.run([*command, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{stopped} already scored" in again.stdout
    clean = subprocess.run([*command, "--out", str(tmp_path / "clean")], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    assert len(pq.read_table(tmp_path / "out" / "files.parquet")) == n_clips
    resumed, whole = parquet_rows(tmp_path / "out"), parquet_rows(tmp_path / "clean")
    assert set(resumed) == set(whole) and len(whole) > 40  # some clips hold no speech loud enough to keep
    for source, rows in whole.items():
        assert [(r["start_s"], r["end_s"], r["p_angry"]) for r in resumed[source]] == \
            [(r["start_s"], r["end_s"], r["p_angry"]) for r in rows]


def test_without_ray_it_says_what_to_install(tmp_path):
    code = "import sys; sys.modules['ray'] = None; from ser_live import batch; batch.main()"
    r = subprocess.run([sys.executable, "-c", code, str(SAMPLE), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr == f"ser-batch: {batch.INSTALL_HINT}\n"
    assert not (tmp_path / "out").exists()
