from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_live.segmenter import Segmenter, SegmenterConfig, session_utterances, speech_levels, speech_span, utterances
from ser_live.train.augment import pink
from experiments.quiet_mic_scan import cut
from conftest import data_dir, join_with_pauses, real_clips

SR = 16000


def _feed(seg: Segmenter, x: np.ndarray, block: int) -> list:
    events = []
    for i in range(0, x.size, block):
        events += seg.process(x[i : i + block])
    return events + seg.flush()


def _tone_bursts(bursts: list[tuple[float, float]], total: float) -> np.ndarray:
    """Voice-like harmonic bursts (150 Hz, amplitude modulated) at the given (start, end) seconds."""
    t = np.arange(int(total * SR)) / SR
    x = np.zeros_like(t)
    for s, e in bursts:
        m = (t >= s) & (t < e)
        tt = t[m] - s
        x[m] = sum(np.sin(2 * np.pi * 150 * k * tt) / k for k in range(1, 12)) * 0.2 * (1 + 0.3 * np.sin(2 * np.pi * 4 * tt))
    return x.astype(np.float32)


def test_synthetic_bursts_give_start_and_end_events_with_padding():
    x = _tone_bursts([(1.0, 2.0), (3.5, 5.0)], 6.5)
    cfg = SegmenterConfig()
    events = _feed(Segmenter(cfg), x, 333)  # odd block size: frames straddle calls
    kinds = [e.kind for e in events if e.kind != "update"]
    assert kinds == ["start", "pause", "end", "start", "pause", "end"]
    ends = [e for e in events if e.kind == "end"]
    pad = cfg.pad_ms / 1000
    for e, (s, t) in zip(ends, [(1.0, 2.0), (3.5, 5.0)]):
        assert abs(e.start / SR - (s - pad)) <= 0.07
        assert -0.05 <= e.end / SR - (t + pad) <= 0.15  # webrtcvad itself holds on ~0-100 ms
        assert e.audio.size == e.end - e.start
        assert e.reason == "silence"
        # ended by the hangover: detected about hangover_ms after the voice stopped
        assert 0.25 <= e.detected_at / SR - t <= cfg.hangover_ms / 1000 + 0.15


def test_short_blip_is_discarded_and_pause_shorter_than_hangover_does_not_split():
    x = _tone_bursts([(0.5, 0.62), (2.0, 3.0), (3.15, 4.0)], 5.0)
    events = _feed(Segmenter(SegmenterConfig(min_utterance_ms=250, hangover_ms=300)), x, 480)
    assert [e.kind for e in events if e.kind != "update"] == ["start", "discard", "start", "pause", "end"]
    end = [e for e in events if e.kind == "end"][0]
    assert end.start / SR < 2.0 and end.end / SR > 4.0


def test_pause_carries_the_end_audio_one_hangover_early_and_may_be_taken_back():
    # a gap of 0.38 s: webrtcvad holds on ~0.13 s, so ~0.25 s of silence: longer than the padding
    # (a pause), shorter than the hangover (no end)
    x = _tone_bursts([(0.5, 1.5), (1.88, 2.5), (4.0, 5.0)], 6.5)
    cfg = SegmenterConfig(pad_ms=200, hangover_ms=300)
    events = [e for e in _feed(Segmenter(cfg), x, 333) if e.kind != "update"]
    assert [e.kind for e in events] == ["start", "pause", "pause", "end", "start", "pause", "end"]
    taken_back, (pause, end) = events[1], (events[2], events[3])
    assert taken_back.start == pause.start and taken_back.end < 1.88 * SR < pause.end  # speech resumed after it
    assert (pause.start, pause.end) == (end.start, end.end)
    assert np.array_equal(pause.audio, end.audio)
    # the padding is covered: the pause is known (hangover - padding) rounded to frames earlier
    assert pause.detected_at >= pause.end
    assert (end.detected_at - pause.detected_at) / SR == pytest.approx(0.09, abs=0.001)


def test_without_interim_events_the_other_events_are_the_same():
    x = _tone_bursts([(0.5, 1.5), (1.88, 4.5), (6.0, 6.1), (7.0, 16.5)], 18.0)
    live = _feed(Segmenter(SegmenterConfig(max_utterance_s=5.0)), x, 333)
    batch = _feed(Segmenter(SegmenterConfig(max_utterance_s=5.0), interim=False), x, 333)
    assert {e.kind for e in live} >= {"update", "pause"}
    keep = [(e.kind, e.start, e.end, e.detected_at, e.reason, e.levels) for e in live if e.kind not in ("update", "pause")]
    assert [(e.kind, e.start, e.end, e.detected_at, e.reason, e.levels) for e in batch] == keep
    for a, b in zip([e for e in live if e.kind == "end"], [e for e in batch if e.kind == "end"]):
        assert np.array_equal(a.audio, b.audio)


def test_long_monologue_is_cut_at_max_length_and_continues():
    x = _tone_bursts([(0.5, 12.5)], 13.5)
    events = _feed(Segmenter(SegmenterConfig(max_utterance_s=5.0)), x, 1600)
    ends = [e for e in events if e.kind == "end"]
    assert [e.reason for e in ends] == ["max_length", "max_length", "silence"]
    assert all(e.audio.size <= 5.0 * SR + 480 for e in ends)
    assert ends[1].start == ends[0].end and ends[2].start == ends[1].end  # contiguous, nothing lost


def test_provisional_updates_arrive_every_second_while_speaking():
    x = _tone_bursts([(0.5, 4.6)], 5.5)
    cfg = SegmenterConfig(provisional_every_s=1.0, provisional_window_s=3.0)
    events = _feed(Segmenter(cfg), x, 480)
    updates = [e for e in events if e.kind == "update"]
    assert len(updates) == 4
    gaps = np.diff([u.detected_at for u in updates]) / SR
    assert np.all(np.abs(gaps - 1.0) < 0.05)
    assert all(u.audio.size <= 3.0 * SR for u in updates)


def test_silence_and_noise_floor_give_nothing():
    rng = np.random.default_rng(1)
    x = np.zeros(5 * SR, np.float32)
    assert _feed(Segmenter(), x, 480) == []
    floor = rng.normal(0, 10 ** (-55 / 20), 5 * SR).astype(np.float32)
    assert [e for e in _feed(Segmenter(), floor, 480) if e.kind == "end"] == []


def test_block_size_does_not_change_the_result():
    x = _tone_bursts([(0.7, 1.9), (2.6, 3.3)], 4.0)
    a = [(e.kind, e.start, e.end) for e in _feed(Segmenter(), x, 160)]
    b = [(e.kind, e.start, e.end) for e in _feed(Segmenter(), x, 7919)]
    assert a == b


def test_invalid_parameters_are_refused():
    with pytest.raises(ValueError):
        SegmenterConfig(frame_ms=25)
    with pytest.raises(ValueError):
        SegmenterConfig(aggressiveness=5)
    with pytest.raises(ValueError):
        SegmenterConfig(hangover_ms=0)


def test_real_stream_of_clips_one_utterance_per_clip():
    """Real clips of both corpora joined by pauses over a -60 dBFS floor: one utterance each."""
    clips = real_clips(10, 10)
    x, spans = join_with_pauses(clips)
    ends = [e for e in _feed(Segmenter(), x, 480) if e.kind == "end"]
    found = 0
    for s, t in spans:
        hits = [e for e in ends if e.start / SR < t and e.end / SR > s]
        found += bool(hits)
        for e in hits:  # boundaries stay within the clip plus padding and hangover
            assert e.start / SR >= s - 0.25 and e.end / SR <= t + 0.45
    assert found >= 0.95 * len(spans)
    assert len(ends) <= 1.15 * len(spans)  # few splits


def test_an_end_that_its_pause_announced_reuses_the_pause_levels(monkeypatch):
    """The levels of an utterance are computed once when a pause announced its end: the end event
    carries the same values, which are those of its own audio."""
    import ser_live.segmenter as segmenter

    x, _ = join_with_pauses(real_clips(4, 4))
    calls = []
    monkeypatch.setattr(segmenter, "speech_levels", lambda a: calls.append(a.size) or speech_levels(a))
    events = _feed(Segmenter(), x, 480)
    pauses = [(e.start, e.end) for e in events if e.kind == "pause"]
    ends = [e for e in events if e.kind == "end"]
    assert len(ends) >= 7 and all(e.levels == speech_levels(e.audio) for e in ends)
    reused = sum((e.start, e.end) in pauses for e in ends)
    assert reused >= len(ends) - 1  # every end by silence was announced (the last may be flushed)
    assert len(calls) == len(pauses) + len(ends) - reused


def test_speech_span_trims_leading_and_trailing_silence_of_a_real_clip():
    path = sorted((data_dir() / "ravdess" / "Actor_05").glob("*.flac"))[10]
    audio, _ = sf.read(path, dtype="float32")
    cut = speech_span(audio)
    assert cut is not None and 0.8 * SR < cut.size < audio.size  # RAVDESS clips start with ~1 s silence
    assert utterances(np.zeros(SR, np.float32)) == []
    assert speech_span(np.zeros(SR, np.float32)) is None


def _ends(x: np.ndarray, config: SegmenterConfig) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in _feed(Segmenter(config, interim=False), x, 4800) if e.kind == "end"]


def _matched(ref: list[tuple[int, int]], got: list[tuple[int, int]], after_s: float, tol_s: float = 0.03) -> float:
    """Fraction of the reference utterances starting after ``after_s`` found with both ends within tol_s."""
    later = [r for r in ref if r[0] >= after_s * SR]
    hits = sum(any(abs(g[0] - r[0]) <= tol_s * SR and abs(g[1] - r[1]) <= tol_s * SR for g in got) for r in later)
    return hits / len(later)


def test_a_quiet_source_is_cut_like_a_normal_one_once_its_level_is_learned():
    """Three speakers' real clips, each stream with speech peaks at the target level, then 25 dB quieter:
    after the first three utterances the VAD gain has caught up and the cuts are (within 0.1 s) those of
    the normal stream; heard as is, the quiet stream is cut differently most of the time."""
    on, off = [], []
    for actor in ("05", "11", "16"):
        paths = sorted((data_dir() / "ravdess" / f"Actor_{actor}").glob("*.flac"))[::5][:12]
        x, spans = join_with_pauses(paths, floor_dbfs=-90.0)
        peak = np.median([speech_levels(x[int(s * SR) : int(t * SR)])[0] for s, t in spans])
        x *= np.float32(10 ** ((-20.0 - peak) / 20))
        quiet = x * np.float32(10 ** (-25 / 20))
        after = spans[3][0]
        on.append(_matched(_ends(x, SegmenterConfig()), _ends(quiet, SegmenterConfig()), after, 0.1))
        none = SegmenterConfig(vad_target_dbfs=None)
        off.append(_matched(_ends(x, none), _ends(quiet, none), after, 0.1))
    assert np.mean(on) >= 0.8 and np.mean(off) <= 0.5, (on, off)


def test_the_vad_gain_never_lifts_a_noisy_background_and_starts_afresh_per_source():
    def gain_after(x: np.ndarray, seg: Segmenter) -> float:
        for i in range(0, x.size, 4800):
            seg.process(x[i : i + 4800])
        return seg.vad_gain_db

    paths = real_clips(6, 0)  # RAVDESS: speech peaks well below the -20 dBFS target
    seg = Segmenter()
    assert gain_after(join_with_pauses(paths, floor_dbfs=-90.0)[0], seg) > 2.0  # quiet background: raised
    seg.reset()
    assert seg.vad_gain_db == 0.0
    assert gain_after(join_with_pauses(paths, floor_dbfs=-50.0)[0], seg) <= 0.0  # the same over -50 dBFS: not


def test_a_quiet_microphone_keeps_its_sentences_apart_while_the_gain_rises():
    """Real clips with speech peaks at -42 dBFS over a -82 dBFS hiss: the VAD gain needs about +22 dB.
    Raised at once, WebRTC VAD (adapted to the quieter hiss) hears the hiss as speech and two sentences
    came out as one; rising at most vad_max_raise_db per utterance, every utterance stays in its clip."""
    x, spans = join_with_pauses(real_clips(12, 0), floor_dbfs=-120.0)
    peak = np.median([speech_levels(x[int(s * SR) : int(t * SR)])[0] for s, t in spans])
    x *= np.float32(10 ** ((-42.0 - peak) / 20))
    x += np.random.default_rng(1).normal(0.0, 10 ** (-82 / 20), x.size).astype(np.float32)

    def merged(config: SegmenterConfig) -> tuple[int, list[float]]:
        seg, gains, n = Segmenter(config, interim=False), [], 0
        for i in range(0, x.size, 480):
            for e in seg.process(x[i : i + 480]):
                if e.kind == "end":
                    gains.append(seg.vad_gain_db)
                    n += sum(e.start / SR < t and e.end / SR > s for s, t in spans) > 1
        return n, gains

    n, gains = merged(SegmenterConfig())
    assert n == 0 and max(np.diff([0.0, *gains])) <= 10.0 + 1e-9 and gains[-1] > 15.0, gains
    assert merged(SegmenterConfig(vad_max_raise_db=40.0))[0] >= 1  # the gain at once: sentences merge


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_a_hiss_lifted_towards_minus_50_dbfs_is_heard_as_speech_so_the_limit_stays_at_minus_60(colour):
    """Real clips with speech peaks at -42 dBFS over a -72 dBFS hiss. The shipped background limit
    (-60 dBFS) lets the VAD gain rise 12 dB and every utterance stays in its clip; a -50 dBFS limit lets
    it lift the hiss to -50 dBFS, and WebRTC VAD then hears hiss as speech, even when the gain rises
    only 6 dB per utterance (reports/ablation.md: why -20 dB on CREMA-D is not fixed that way; more such
    streams: experiments/quiet_mic_scan.py)."""
    x, spans = join_with_pauses(real_clips(12, 0), floor_dbfs=-120.0, seed=1)
    peak = np.median([speech_levels(x[int(s * SR) : int(t * SR)])[0] for s, t in spans])
    rng = np.random.default_rng(1)
    hiss = rng.standard_normal(x.size) if colour == "white" else pink(rng, x.size)
    x = (x * 10 ** ((-42.0 - peak) / 20) + 10 ** (-72 / 20) * hiss).astype(np.float32)
    n, merged, spilled = cut(x, spans, SegmenterConfig())
    assert n >= 12 and merged == spilled == 0
    assert sum(cut(x, spans, SegmenterConfig(vad_floor_dbfs=-50.0, vad_max_raise_db=6.0))[1:]) >= 1


def test_a_source_carried_from_clip_to_clip_keeps_its_gain():
    """The trainer cuts a speaker's clips one at a time: the level memory a clip leaves is where the next
    starts (and a clip alone starts afresh)."""
    paths = real_clips(6, 0)
    quiet = [sf.read(p, dtype="float32")[0] * np.float32(0.05) for p in paths]
    memory, gains = None, []
    for audio in quiet:
        found, memory = session_utterances(audio, SegmenterConfig(), memory)
        gains.append(20 * np.log10(memory.vad_gain))
    assert gains[0] == 0.0 and gains[-1] > 15.0 and np.all(np.diff(gains) <= 10.0 + 1e-9), gains
    seg = Segmenter()
    seg.reset(memory)
    assert seg.vad_gain_db == pytest.approx(gains[-1]) and seg.memory == memory
    assert session_utterances(quiet[-1], SegmenterConfig())[1] != memory  # alone: afresh


def test_block_size_does_not_change_the_result_while_the_vad_gain_moves():
    x, _ = join_with_pauses(real_clips(4, 4), floor_dbfs=-80.0)
    x *= np.float32(0.1)
    a = [(e.kind, e.start, e.end) for e in _feed(Segmenter(), x, 480)]
    b = [(e.kind, e.start, e.end) for e in _feed(Segmenter(), x, 7919)]
    assert a == b and len(a) >= 8


def test_a_breath_that_the_raised_gain_lets_through_is_discarded():
    """The shipped sample (six real clips end to end): once the gain rises after two utterances, a breath
    between clips peaking near -64 dBFS passes the VAD; it is discarded as far below the voice."""
    x, _ = sf.read(Path(__file__).resolve().parents[1] / "examples" / "sample.flac", dtype="float32")
    events = _feed(Segmenter(interim=False), x, 4800)
    assert len([e for e in events if e.kind == "end"]) == 6
    assert [e for e in events if e.kind == "discard" and e.reason == "quiet"]
    ungated = _ends(x, SegmenterConfig(quiet_gate_db=200.0))
    assert len(ungated) == 7 and min(e - s for s, e in ungated) < 0.9 * SR
    # live, the worker is not asked to extract the breath's features ahead: no pause event for it
    live = _feed(Segmenter(), x, 480)
    paused = {e.start for e in live if e.kind == "pause"}
    quiet = [e.start for e in live if e.kind == "discard" and e.reason == "quiet"]
    kept = [e.start for e in live if e.kind == "end" and e.reason == "silence"]
    assert quiet and not paused & set(quiet) and set(kept) <= paused


def test_speech_levels_are_the_loudest_10_ms_and_the_5th_percentile():
    audio, _ = sf.read(sorted((data_dir() / "ravdess" / "Actor_05").glob("*.flac"))[3], dtype="float32")
    frames = audio[: audio.size // 160 * 160].reshape(-1, 160).astype(np.float64)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-20)
    peak, background = speech_levels(audio)
    assert peak == pytest.approx(db.max(), abs=1e-9) and background == pytest.approx(np.percentile(db, 5), abs=1e-9)
    assert speech_levels(audio[:100]) == (-np.inf, -np.inf)


@pytest.mark.parametrize("max_s", [0.46, 0.8])
def test_short_maximum_length_keeps_the_result_independent_of_block_size(max_s):
    """The VAD runs ahead only over frames that cannot end an utterance; with a maximum length shorter
    than a hangover plus the pre-roll, the bound must come from the maximum length."""
    x, _ = join_with_pauses(real_clips(10, 10), floor_dbfs=-80.0)
    x *= np.float32(0.1)
    config = SegmenterConfig(max_utterance_s=max_s, min_utterance_ms=100)
    a = [(e.kind, e.start, e.end) for e in _feed(Segmenter(config), x, 480)]
    b = [(e.kind, e.start, e.end) for e in _feed(Segmenter(config), x, 30000)]
    assert a == b and len([k for k, *_ in a if k == "end"]) >= 20


def test_vad_gain_follows_the_median_peak_within_its_limits():
    """The VAD's gain on its own: still until two utterances are known, then the median peak towards
    -20 dBFS, held back so the background stays below -60 dBFS and rising by at most 10 dB a time."""
    from ser_live.segmenter import LevelMemory, VadGain

    gain = VadGain(SegmenterConfig())
    gain.observe((-40.0, -90.0))
    assert gain.db == 0.0 and not gain.too_quiet(-75.0)
    gain.observe((-42.0, -90.0))  # median peak -41: +21 dB wanted, the background allows 30, one step gives 10
    assert gain.db == pytest.approx(10.0)
    assert gain.too_quiet(-71.5) and not gain.too_quiet(-70.5)  # 30 dB under the median peak
    gain.observe((-40.0, -65.0))  # median peak -40, background -90: +20 dB wanted, reached
    assert gain.db == pytest.approx(20.0)
    carried = VadGain(SegmenterConfig(), gain.memory)
    assert carried.memory == gain.memory == LevelMemory(((-40.0, -90.0), (-42.0, -90.0), (-40.0, -65.0)), gain.linear)
    gain.observe((-40.0, -50.0))
    gain.observe((-40.0, -50.0))  # median background -65: lifting it above -60 is refused
    assert gain.db == pytest.approx(5.0)
    off = VadGain(SegmenterConfig(vad_target_dbfs=None))
    off.observe((-40.0, -90.0))
    off.observe((-40.0, -90.0))
    assert off.db == 0.0
