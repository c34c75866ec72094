"""File replay through the live path: ring buffer -> segmenter -> worker -> log."""

import csv
import json
import time

import numpy as np
import pytest
import soundfile as sf

from ser_live.events import End, Job, Result, SpeechState, StopReason
from ser_live.pipeline import Pipeline
from ser_live.replay import FileReplay, replay_files
from ser_live.segmenter import utterances
from ser_live.extractor import Extractor
from ser_live.worker import Worker
from conftest import run_cli as run, join_with_pauses, real_clips


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """Real clips from both corpora joined by pauses over a -60 dBFS floor, at 44.1 kHz stereo
    (so replay also exercises resampling and down-mixing)."""
    import soxr

    clips = real_clips(12, 12)
    x, spans = join_with_pauses(clips, seed=3)
    path = tmp_path_factory.mktemp("stream") / "stream.flac"
    y = soxr.resample(x, 16000, 44100)
    sf.write(path, np.stack([y, 0.5 * y], axis=1), 44100)
    return path, spans


def test_batch_replay_logs_one_row_per_spoken_utterance(stream, tmp_path, capsys):
    path, spans = stream
    log = tmp_path / "out.csv"
    code, out, err = run(["--file", str(path), "--speed", "0", "--log", str(log), "--plain"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(log.open()))
    found = sum(any(float(r["start_s"]) < t and float(r["end_s"]) > s for r in rows) for s, t in spans)
    assert found >= 0.95 * len(spans)
    assert len(rows) <= 1.15 * len(spans)  # few splits
    assert len(out.splitlines()) >= len(rows)  # one printed line per utterance, plus the summary
    for r in rows:
        probs = [float(v) for k, v in r.items() if k.startswith("p_")]
        assert sum(probs) == pytest.approx(1.0, abs=2e-3)
        assert float(r["confidence"]) == pytest.approx(max(probs), abs=1e-4)
        assert r["source"] == str(path)


def test_batch_replay_logs_exactly_the_utterances_of_the_offline_segmenter(tmp_path, capsys):
    """Nothing lost, merged or split at --speed 0: each file of a batch gives, utterance for
    utterance, what the segmenter finds in that file alone (no state carried from the file before)."""
    clips = real_clips(14, 40)
    paths = []
    for i, group in enumerate([clips[::2], clips[1::2]]):  # two streams of about 110 s
        x, _ = join_with_pauses(group, seed=30 + i)
        paths.append(tmp_path / f"stream{i}.flac")
        sf.write(paths[-1], x, 16000, subtype="PCM_16")
    order = [paths[0], paths[1], paths[0]]
    expected = []
    for p in order:
        audio, _ = sf.read(p, dtype="float32")
        expected += [(str(p), f"{e.start / 16000:.3f}", f"{e.end / 16000:.3f}") for e in utterances(audio)]
    log = tmp_path / "out.csv"
    code, out, err = run(["--file", *map(str, order), "--speed", "0", "--plain", "--log", str(log)], capsys)
    assert code == 0, err
    logged = [(r["source"], r["start_s"], r["end_s"]) for r in csv.DictReader(log.open())]
    assert len(expected) >= len(clips)  # about 1.5 per clip: the first stream is replayed twice
    assert logged == expected


def test_sources_are_timed_separately_and_never_mixed(tmp_path, default_model):
    """Two files back to back: each utterance belongs to one file, timed from that file's start."""
    clips = real_clips(2, 2)
    paths = []
    for i, group in enumerate([clips[:2], clips[2:]]):
        x, _ = join_with_pauses(group, seed=i)
        paths.append(tmp_path / f"part{i}.wav")
        sf.write(paths[-1], x, 16000)
    results = [i for i in replay_files(default_model, paths, speed=0, timeout=30) if isinstance(i, Result)]
    by_source = {p: [r for r in results if r.job.source == str(p)] for p in paths}
    assert [len(v) for v in by_source.values()] == [2, 2]
    for p, rs in by_source.items():
        duration = sf.info(p).duration
        assert all(0 <= r.job.start_s < r.job.end_s <= duration + 1e-6 for r in rs)


@pytest.mark.parametrize("drop_unread", [False, True])
def test_a_stop_drops_audio_not_yet_read(drop_unread, default_model):
    """Stopped (``close(drop_unread=True)``), the pipeline does not segment what it has not read
    yet: at --speed 0 that can be many seconds of audio; at the end of the files it segments all."""
    x, spans = join_with_pauses(real_clips(2, 2), seed=7)
    pipe = Pipeline(default_model, batch=True)
    pipe.begin_source("stream")
    assert pipe.feed_audio(x)  # all written before the segmenter thread reads anything
    pipe.end_source()
    pipe.close(drop_unread)
    pipe.start()
    items = []
    while not isinstance(item := pipe.results.get(timeout=30), End):
        items.append(item)
    finals = [i for i in items if isinstance(i, Result)]
    assert len(finals) == (0 if drop_unread else len(spans))


def test_paced_replay_gives_provisional_results_then_final(tmp_path, default_model):
    clip = real_clips(1, 0)[0]
    audio, _ = sf.read(clip, dtype="float32")
    path = tmp_path / "one.wav"
    sf.write(path, np.concatenate([audio, np.zeros(8000, np.float32)]), 16000)
    items = replay_files(default_model, [path], speed=4.0, timeout=30)  # paced: the live path, four times faster
    kinds = [("final" if i.job.final else "provisional") if isinstance(i, Result) else ("speech" if i.speaking else "silence") for i in items]
    assert kinds[0] == "speech" and "provisional" in kinds and "final" in kinds
    assert kinds.index("provisional") < kinds.index("final")
    assert all(isinstance(i, (SpeechState, Result)) for i in items)  # nothing else comes out of the pipeline
    results = [i for i in items if isinstance(i, Result)]
    # every result, provisional or final, was classified: probabilities over the model's labels, no error
    assert all(r.probs is not None and r.probs.shape == (len(default_model.labels),) and not r.error for r in results)


def test_live_finals_use_features_extracted_during_the_hangover(stream, default_model):
    """Paced replay extracts each utterance's features at the pause, before the hangover ends it;
    the results equal batch replay's, which extracts at the end."""
    path, spans = stream
    paced = [i for i in replay_files(default_model, [path], speed=8.0, timeout=60) if isinstance(i, Result) and i.job.final]
    batch = [i for i in replay_files(default_model, [path], speed=0, timeout=60) if isinstance(i, Result)]
    assert len(paced) == len(batch) >= len(spans)
    assert all(r.ahead for r in paced) and not any(r.ahead for r in batch)
    for a, b in zip(paced, batch):
        assert (a.job.start_s, a.job.end_s) == (b.job.start_s, b.job.end_s)
        np.testing.assert_array_equal(a.probs, b.probs)


def test_worker_reuses_ahead_features_only_for_the_same_span(default_model, monkeypatch):
    audio = sf.read(real_clips(1, 0)[0], dtype="float32")[0]
    calls = []
    extract = Extractor.extract
    monkeypatch.setattr(Extractor, "extract", lambda self, x: calls.append(x.size) or time.sleep(0.05) or extract(self, x))
    w = Worker(default_model, [].append)
    w.extract_ahead(Job("a", 0.0, 2.0, audio, False, 0.0, 1, ahead=True))
    same = w.classify(Job("a", 0.0, 2.0, audio, True, 0.0, 1))
    assert len(calls) == 1 and same.ahead
    assert same.feature_ms >= 50.0  # the reported cost includes the extraction done ahead
    w.extract_ahead(Job("b", 0.0, 2.0, audio, False, 0.0, 2, ahead=True))  # speech resumed: a longer span ends
    longer = w.classify(Job("b", 0.0, 2.5, audio, True, 0.0, 2))
    assert len(calls) == 3 and not longer.ahead
    np.testing.assert_array_equal(same.probs, longer.probs)  # same audio, fresh source: only the span key differs
    w.extract_ahead(Job("b", 3.0, 5.0, audio, False, 0.0, 2, ahead=True))
    first, again = (w.classify(Job("b", 3.0, 5.0, audio, True, 0.0, 2)) for _ in range(2))
    assert len(calls) == 5 and first.ahead and not again.ahead  # an ahead vector serves one final only


def test_json_output(stream, capsys):
    path, spans = stream
    code, out, err = run(["--file", str(path), "--speed", "0", "--json"], capsys)
    assert code == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    assert len(objs) >= 0.95 * len(spans)
    first = objs[0]
    assert set(first) >= {"source", "start_s", "end_s", "wall_time", "emotion", "confidence", "latency_ms", "features_ms", "inference_ms", "cpu_ms", "probs"}
    assert first["features_ms"] > 0 and first["inference_ms"] > 0 and first["cpu_ms"] > 0
    assert first["emotion"] == max(first["probs"], key=first["probs"].get)
    assert "session:" in err  # the summary goes to stderr so stdout stays pure JSON


def test_the_observer_sees_every_event_the_session_gets_with_the_times_of_each_final(tmp_path, default_model):
    """One typed event stream: the pipeline's observer sees what the results queue carries, in order,
    ending with End; a final job says why it ended and when its last voiced frame reached the
    segmenter, before the segmenter detected its end, before its result was ready."""
    x, spans = join_with_pauses(real_clips(2, 1), seed=5)
    path = tmp_path / "s.wav"
    sf.write(path, x, 16000)
    seen: list = []
    pipe = Pipeline(default_model, observer=seen.append)
    pipe.start()
    replay = FileReplay(pipe, [path], speed=8.0)
    replay.start()
    replay.join()
    assert replay.ended() is StopReason.END_OF_FILES and replay.describe() == "replaying 1 file(s) at 8x real time"
    pipe.close()
    queued = [pipe.results.get(timeout=30)]
    while not isinstance(queued[-1], End):
        queued.append(pipe.results.get(timeout=30))
    assert seen == queued and sum(isinstance(e, End) for e in seen) == 1
    finals = [e for e in seen if isinstance(e, Result) and e.job.final]
    assert len(finals) == len(spans)
    for r in finals:
        assert r.job.reason in ("silence", "flush")
        assert r.job.voiced_in <= r.job.detected <= r.ready
        if r.job.reason == "silence":  # the hangover (300 ms of audio) at 8x, give or take a chunk
            assert 0.0 < r.job.detected - r.job.voiced_in < 0.3
    status = pipe.status()
    assert (status.source, status.speaking, status.pending, status.dropped_final) == (str(path), False, 0, 0)
    assert status.accepted_final == len(finals)
    assert status.source_seconds == pytest.approx(x.size / 16000, abs=0.05)


def test_the_session_stops_on_what_its_source_reports(default_model, tmp_path, capsys):
    """The session knows a source only by its interface: one that ends with 'device stopped' (as a
    microphone that is unplugged does) ends the session with status 1 and says so; its counters are the pipeline's."""
    from ser_live.session import Options, Session

    x, _ = join_with_pauses(real_clips(2, 0), seed=9)

    class GoneDevice:
        def __init__(self, pipeline: Pipeline) -> None:
            self.pipeline, self.fed = pipeline, False

        def start(self) -> None:
            self.pipeline.begin_source("usb mic", 16000)
            self.fed = self.pipeline.feed_audio(x)
            self.pipeline.count_overflow()

        def stop(self) -> None:
            self.pipeline.end_source()

        def ended(self) -> StopReason | None:
            return StopReason.DEVICE_STOPPED if self.fed else None

        def describe(self) -> str:
            return "listening on a test device"

    session = Session(Options(default_model, [tmp_path / "unused.wav"], view="lines"))
    session.source = GoneDevice(session.pipeline)
    assert session.run() == 1 and session.stop_reason is StopReason.DEVICE_STOPPED
    out, err = capsys.readouterr()
    assert "listening on a test device" in err and "the input device stopped delivering audio" in err
    assert "input overflows 1," in err
