"""The Python API (``ser_live.Detector``, ``ser_live.score_file``): the same results as the ``ser-live``
command on the same audio, whatever the chunking, rate and channels of the input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, join_with_pauses, logged_rows, real_clips
from ser_live import Detector, ModelError, Prediction, Provisional, SpeechEnd, SpeechStart, Utterance, score_file
from ser_live.events import Result
from ser_live.replay import replay_files

SAMPLE = REPO / "examples" / "sample.flac"


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    """Real clips of both corpora joined by pauses over a -60 dBFS floor, 16 kHz mono."""
    x, _ = join_with_pauses(real_clips(6, 6), seed=5)
    path = tmp_path_factory.mktemp("api") / "stream.flac"
    sf.write(path, x, 16000)
    return path


@pytest.fixture(scope="module", params=["default", "fast"])
def model(request, default_model, fast_model):
    return {"default": default_model, "fast": fast_model}[request.param]


def assert_same_as_log(utts: list[Utterance], rows: list[dict], labels: list[str]) -> None:
    assert len(utts) == len(rows) > 0
    for u, r in zip(utts, rows):
        assert u.start_s == pytest.approx(float(r["start_s"]), abs=1e-3)
        assert u.end_s == pytest.approx(float(r["end_s"]), abs=1e-3)
        assert u.label == r["emotion"]
        # the log keeps 4 decimals
        np.testing.assert_allclose([u.probabilities[k] for k in labels], [float(r[f"p_{k}"]) for k in labels],
                                   atol=5e-5 + 1e-5, rtol=0)


def assert_same_utterances(a: list[Utterance], b: list[Utterance], atol: float = 1e-5) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert (x.start_s, x.end_s, x.label) == (y.start_s, y.end_s, y.label)
        np.testing.assert_allclose(list(x.probabilities.values()), list(y.probabilities.values()), atol=atol, rtol=0)


def finals(events: list) -> list[Utterance]:
    return [e for e in events if isinstance(e, Utterance)]


def feed_in_chunks(detector: Detector, audio: np.ndarray, rate: int, seconds: float) -> list:
    step = max(1, int(rate * seconds))
    events = []
    for i in range(0, len(audio), step):
        events += detector.feed(audio[i : i + step], rate)
    return events + detector.flush()


@pytest.mark.parametrize("audio", ["sample", "stream"])
def test_score_file_equals_the_cli_log_and_the_live_path(audio, stream, model, tmp_path, capsys):
    path = SAMPLE if audio == "sample" else stream
    name = "default" if model.speaker_norm is None else "fast"
    utts = list(score_file(path, model=model))
    assert_same_as_log(utts, logged_rows([path], tmp_path / "log.csv", capsys, "--model", name), model.labels)
    live = [e for e in replay_files(model, [path]) if isinstance(e, Result) and e.job.final]
    assert [(u.start_s, u.end_s) for u in utts] == [(r.job.start_s, r.job.end_s) for r in live]
    np.testing.assert_allclose([list(u.probabilities.values()) for u in utts], [r.probs for r in live], atol=1e-5, rtol=0)


@pytest.mark.parametrize("seconds", [0.037, 1.0])
def test_feed_in_odd_chunks_gives_the_finals_of_score_file(seconds, stream, fast_model):
    audio, rate = sf.read(stream, dtype="float32")
    events = feed_in_chunks(Detector(fast_model), audio, rate, seconds)
    assert_same_utterances(finals(events), list(score_file(stream, model=fast_model)))
    assert any(isinstance(e, Provisional) for e in events)
    # every utterance is framed by its speech start and end
    kinds = [type(e) for e in events if not isinstance(e, Provisional)]
    for i, kind in enumerate(kinds):
        if kind is Utterance:
            assert SpeechStart in kinds[:i] and kinds[i + 1] is SpeechEnd


def test_int16_input_equals_the_file_read_as_float(default_model):
    audio, rate = sf.read(SAMPLE, dtype="int16")
    got = finals(feed_in_chunks(Detector(default_model), audio, rate, 0.02))
    assert_same_utterances(got, list(score_file(SAMPLE, model=default_model)), atol=1e-6)


def test_44k1_stereo_gives_what_16k_mono_gives(stream, fast_model):
    import soxr

    audio, rate = sf.read(stream, dtype="float32")
    y = soxr.resample(audio, rate, 44100)
    stereo = np.stack([y, 0.5 * y], axis=1)
    mono16 = finals(feed_in_chunks(Detector(fast_model), audio, rate, 0.02))
    stereo44 = finals(feed_in_chunks(Detector(fast_model), stereo, 44100, 0.02))
    assert len(stereo44) == len(mono16)
    for a, b in zip(stereo44, mono16):
        assert a.start_s == pytest.approx(b.start_s, abs=0.1) and a.end_s == pytest.approx(b.end_s, abs=0.1)
    assert sum(a.label == b.label for a, b in zip(stereo44, mono16)) >= 0.8 * len(mono16)


def test_reset_restarts_times_and_the_speaker_normaliser(stream, fast_model):
    audio, rate = sf.read(stream, dtype="float32")
    head = audio[: rate * 20]
    clip, _ = sf.read(real_clips(1, 0)[0], dtype="float32")
    alone = Detector(fast_model).classify(clip, 16000)
    detector = Detector(fast_model)
    first = finals(feed_in_chunks(detector, head, rate, 0.5))
    # flush: a new stream (times from 0) of the same speaker, whose normaliser has heard the first one
    again = finals(feed_in_chunks(detector, head, rate, 0.5))
    assert again and all(0.0 <= u.start_s < u.end_s <= 20.0 for u in again)
    carried = detector.classify(clip, 16000)
    assert max(abs(carried.probabilities[k] - alone.probabilities[k]) for k in fast_model.labels) > 1e-3
    detector.feed(audio[rate * 20 : rate * 22], rate)  # part of an utterance, dropped by reset
    detector.reset()
    assert detector.classify(clip, 16000) == alone
    detector.reset()
    assert_same_utterances(finals(feed_in_chunks(detector, head, rate, 0.5)), first, atol=1e-6)


@pytest.mark.parametrize("which", ["default", "fast"])
def test_classify_equals_what_the_trainer_computes(which, default_model, fast_model):
    from ser_live.segmenter import SegmenterConfig
    from ser_live.train.dataset import clip_features

    model = {"default": default_model, "fast": fast_model}[which]
    clips = real_clips(2, 2)
    rows = np.array([clip_features(str(p), SegmenterConfig(), extractor=model.extractor)[0] for p in clips])
    def each(head):
        return None if head is None else (lambda r: np.stack([head(x) for x in r]))

    if model.speaker_norm is not None:  # the trainer adapts to a speaker's clips in arrival order
        wanted = model.speaker_norm.sequence_proba(rows, each(model.predict), each(model.unadapted))
    else:
        wanted = each(model.predict)(rows)
    detector = Detector(model)
    for clip, want in zip(clips, wanted):
        audio, rate = sf.read(clip, dtype="float32")
        got = detector.classify(audio, rate)
        assert isinstance(got, Prediction) and got.label == model.labels[int(want.argmax())]
        np.testing.assert_allclose([got.probabilities[k] for k in model.labels], want, atol=1e-5, rtol=0)
        assert got.confidence == pytest.approx(float(want.max()))


def test_bad_input_is_refused_with_a_clear_error(fast_model, tmp_path):
    detector = Detector(fast_model)
    one_second = np.zeros(16000, np.float32)
    for bad in (np.zeros((2, 16000), np.float32), np.zeros((10, 2, 2), np.float32), np.array(0.5), one_second.astype(str)):
        with pytest.raises(ValueError, match="audio must be"):
            detector.feed(bad, 16000)
    for rate in (0, -16000, 16000.5, float("nan"), True):
        with pytest.raises(ValueError, match="sample_rate"):
            detector.feed(one_second, rate)
        with pytest.raises(ValueError, match="sample_rate"):
            detector.classify(one_second, rate)
    detector.feed(one_second, 16000)
    with pytest.raises(ValueError, match="changed from 16000 to 8000"):
        detector.feed(one_second, 8000)
    with pytest.raises(ModelError, match="unknown model 'nonsense'"):
        Detector("nonsense")
    with pytest.raises(ModelError, match="not found"):
        Detector(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="no-such.wav"):
        next(score_file(tmp_path / "no-such.wav", model=fast_model))
    with pytest.raises(ValueError, match="hangover_ms"):
        Detector(fast_model, hangover_ms=0)


def test_silence_gives_no_events_and_a_flushed_stream_nothing_more(fast_model):
    detector = Detector(fast_model)
    assert detector.feed(np.zeros(48000, np.float32), 16000) == []
    assert detector.flush() == [] and detector.flush() == []


def test_importing_the_package_stays_light():
    code = "import sys, ser_live; heavy = {'numpy', 'onnxruntime', 'soundfile'} & set(sys.modules); print(sorted(heavy))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_file_example_prints_what_score_file_finds(fast_model):
    out = subprocess.run([sys.executable, str(REPO / "examples" / "file.py"), "--model", "fast"], capture_output=True,
                         text=True, check=True).stdout
    utts = list(score_file(SAMPLE, model=fast_model))
    for u in utts:  # once from score_file, once from Detector.feed
        assert out.count(f"{u.start_s:6.2f}-{u.end_s:6.2f} s  {u.label:9} {u.confidence:.0%}") == 2
    assert "so far" in out
