"""Streaming utterance segmenter on WebRTC VAD: feed audio, get start/update/end events.

Modelled on silero-vad's ``VADIterator``: a small state machine with named parameters
(hysteresis, padding, hangover, minimum and maximum length). It knows nothing about threads
or devices; the pipeline feeds it, and the trainer uses :func:`utterances` to cut clips
exactly the way the live path cuts speech.

WebRTC VAD's decisions depend on the input level (a quiet voice loses its soft onsets and
endings, or is not found at all), so the VAD hears the source through an automatic gain: the
median peak level of the source's last few kept utterances is brought to ``vad_target_dbfs``,
but never so far that their background rises above ``vad_floor_dbfs`` (the VAD hears loud noise
as speech). Only what the VAD hears is scaled; the utterance audio is passed on as it came. The
first two utterances of a source are heard as is; the gain moves only when an utterance ends, and
rises by at most ``vad_max_raise_db`` at a time: WebRTC VAD adapts to steady noise, but a step up
in what it hears makes that noise voiced for seconds (white noise at -80 dBFS lifted by 20 dB at
once: 63% of the next 5 s voiced; by 10 dB: none), which merged sentences on quiet microphones. A
span that peaks far below the source's recent speech (a breath the raised gain let through) is
discarded. :class:`VadGain` is that gain, beside the VAD state machine of :class:`Segmenter`;
:class:`LevelMemory` carries what the segmenter knows of a source's level from one clip
to the next (the trainer cuts a speaker's clips one at a time, as one session).
"""

from __future__ import annotations

import collections
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import _webrtcvad  # the C module behind webrtcvad.Vad: no per-frame wrapper, no importlib.metadata at start-up
import numpy as np

from ser_live.features import SAMPLE_RATE

EventKind = Literal["start", "update", "pause", "end", "discard"]


@dataclass(frozen=True)
class SegmenterConfig:
    """Named segmenter parameters (times in milliseconds unless the name says seconds)."""

    aggressiveness: int = 2  # webrtcvad mode 0 (lenient) .. 3 (strict)
    frame_ms: int = 30  # webrtcvad accepts 10, 20 or 30 ms frames
    start_window_ms: int = 150  # hysteresis: look at this many ms of recent frames ...
    start_voiced_ms: int = 90  # ... and start when at least this much of it is voiced
    pad_ms: int = 200  # audio kept before the first and after the last voiced frame
    hangover_ms: int = 300  # silence that ends an utterance
    min_utterance_ms: int = 250  # shorter voiced spans are discarded (clicks, coughs)
    max_utterance_s: float = 8.0  # a longer utterance is cut and classified in pieces
    provisional_every_s: float = 1.0  # while speaking, emit an update this often
    provisional_window_s: float = 3.0  # ... carrying at most this much recent speech
    vad_target_dbfs: float | None = -20.0  # the VAD hears the source scaled so recent speech peaks sit here (None: as is)
    vad_floor_dbfs: float = -60.0  # ... but raised no further than lifts their background above this
    vad_max_gain_db: float = 40.0  # ... and by at most this much either way,
    vad_max_raise_db: float = 10.0  # ... rising by at most this much per utterance (a step up makes steady noise voiced)
    level_utterances: int = 5  # the median peak of this many recent utterances sets that gain ...
    level_min_utterances: int = 2  # ... once this many are known (one word may be quiet)
    quiet_gate_db: float = 30.0  # then a kept span peaking this far below that median is a breath or a noise: discarded

    def __post_init__(self) -> None:
        checks = [
            (self.aggressiveness in (0, 1, 2, 3), "aggressiveness must be 0, 1, 2 or 3"),
            (self.frame_ms in (10, 20, 30), "frame_ms must be 10, 20 or 30"),
            (0 < self.start_voiced_ms <= self.start_window_ms, "need 0 < start_voiced_ms <= start_window_ms"),
            (self.pad_ms >= 0, "pad_ms must be >= 0"),
            (self.hangover_ms >= self.frame_ms, "hangover_ms must be at least one frame"),
            (self.min_utterance_ms >= 0, "min_utterance_ms must be >= 0"),
            (self.max_utterance_s * 1000 > self.pad_ms + self.min_utterance_ms, "max_utterance_s is too short"),
            (self.provisional_every_s > 0, "provisional_every_s must be > 0"),
            (self.provisional_window_s > 0, "provisional_window_s must be > 0"),
            (self.vad_max_gain_db >= 0, "vad_max_gain_db must be >= 0"),
            (self.vad_max_raise_db > 0, "vad_max_raise_db must be > 0"),
            (1 <= self.level_min_utterances <= self.level_utterances, "need 1 <= level_min_utterances <= level_utterances"),
            (self.quiet_gate_db > 0, "quiet_gate_db must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def asdict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SegmentEvent:
    """``start``: speech began; ``update``: provisional audio of the utterance so far;
    ``pause``: the silence now covers the padding, so this is exactly the ``end`` event's audio if the
    silence lasts the hangover (the worker can start on it before the end is certain);
    ``end``: a finished utterance; ``discard``: the started span was too short or too quiet to keep
    (``reason``; a span too quiet gets no ``pause`` either).

    ``start``/``end`` are sample indices from the start of the source; ``detected_at`` is the
    sample index whose arrival triggered the event (for latency accounting).
    """

    kind: EventKind
    start: int
    end: int
    detected_at: int
    audio: np.ndarray | None = field(default=None, repr=False)
    reason: str = ""
    levels: tuple[float, float] = (-math.inf, -math.inf)  # ``end``: its (peak, background) levels, see speech_levels
    voiced_end: int = 0  # ``end``: the sample index just after its last voiced frame


@dataclass(frozen=True)
class LevelMemory:
    """What a segmenter knows of its source's level: the (peak, background) levels of the last kept
    utterances and the gain at which the VAD hears the source (linear)."""

    levels: tuple[tuple[float, float], ...] = ()
    vad_gain: float = 1.0


class VadGain:
    """The gain (``linear``) at which the VAD hears a source: the median peak of its last kept utterances
    brought to ``vad_target_dbfs``, within the config's limits (see the module docstring). It moves only
    when :meth:`observe` is given the levels of an utterance that ended."""

    def __init__(self, config: SegmenterConfig, memory: LevelMemory | None = None) -> None:
        memory = memory or LevelMemory()
        self.config = config
        self._levels: collections.deque[tuple[float, float]] = collections.deque(
            memory.levels, maxlen=config.level_utterances)
        self.linear = memory.vad_gain

    @property
    def db(self) -> float:
        return 20.0 * math.log10(self.linear)

    @property
    def memory(self) -> LevelMemory:
        return LevelMemory(tuple(self._levels), self.linear)

    def observe(self, levels: tuple[float, float]) -> None:
        """A kept utterance's (peak, background) levels: the gain follows them."""
        c = self.config
        if c.vad_target_dbfs is None or not all(math.isfinite(v) for v in levels):
            return
        self._levels.append(levels)
        peak = self.speech_peak()
        if peak is None:
            return
        floor = statistics.median(f for _, f in self._levels)
        gain_db = c.vad_target_dbfs - peak
        if gain_db > 0.0:  # a raised background must stay below vad_floor_dbfs: the VAD hears loud noise as speech
            gain_db = min(gain_db, max(c.vad_floor_dbfs - floor, 0.0))
        gain_db = min(max(gain_db, -c.vad_max_gain_db), c.vad_max_gain_db)
        self.linear = 10.0 ** (min(gain_db, self.db + c.vad_max_raise_db) / 20.0)

    def speech_peak(self) -> float | None:
        """Median peak (dBFS) of the recent utterances, once there are enough of them."""
        if len(self._levels) < self.config.level_min_utterances:
            return None
        return statistics.median(p for p, _ in self._levels)

    def too_quiet(self, peak_dbfs: float) -> bool:
        """Far below the source's recent speech: what a raised VAD gain lets through that is not a voice."""
        speech = self.speech_peak()
        return speech is not None and peak_dbfs < speech - self.config.quiet_gate_db


class Segmenter:
    """Feed float32 mono 16 kHz audio in chunks of any size with :meth:`process`."""

    def __init__(self, config: SegmenterConfig | None = None, interim: bool = True) -> None:
        """``interim=False``: no ``update`` or ``pause`` events (they copy audio only a live listener
        uses); the other events are the same."""
        self.config = c = config or SegmenterConfig()
        self.interim = interim
        self._vad = _webrtcvad.create()
        ms = SAMPLE_RATE // 1000
        self._frame = c.frame_ms * ms
        self._pad = c.pad_ms * ms
        self._window = max(1, c.start_window_ms // c.frame_ms)
        self._need = max(1, -(-c.start_voiced_ms // c.frame_ms))
        self._hang = max(1, -(-c.hangover_ms // c.frame_ms))
        self._pause = max(1, -(-c.pad_ms // c.frame_ms))  # silent frames that cover the padding
        self._min = c.min_utterance_ms * ms
        self._max = int(c.max_utterance_s * SAMPLE_RATE)
        self._every = int(c.provisional_every_s * SAMPLE_RATE)
        self._prov = int(c.provisional_window_s * SAMPLE_RATE)
        self._keep_idle = self._pad + self._window * self._frame
        # history: the current utterance (or, while idle, the recent pre-roll); preallocated
        self._buf = np.zeros(self._max + self._keep_idle + 2 * self._frame, np.float32)
        self.reset()

    def reset(self, memory: LevelMemory | None = None, keep_vad: bool = False) -> None:
        """Forget everything, the VAD's adaptive noise model and the source's level included: call
        between sources, so that a file is cut the same whatever was replayed before it.
        ``memory``: the source's level as another segmenter left it (:attr:`memory`), to carry it over;
        ``keep_vad``: the VAD's noise model goes on too (the next file of the same recording session,
        heard as if it followed on in one stream)."""
        if not keep_vad:
            _webrtcvad.init(self._vad)  # also resets the mode
            _webrtcvad.set_mode(self._vad, self.config.aggressiveness)
        self._gain = VadGain(self.config, memory)
        self._n = 0  # valid samples in _buf
        self._t0 = 0  # source sample index of _buf[0]
        self._pos = 0  # samples consumed (multiple of the frame)
        self._rest = np.zeros(0, np.float32)  # partial frame carried to the next call
        self._flags: collections.deque[bool] = collections.deque(maxlen=self._window)  # last _window frames
        self._n_voiced = 0  # voiced frames in _flags
        self._speaking = False
        self._utt_start = 0  # sample index where the utterance audio starts (with pre-roll)
        self._first_voiced = 0
        self._last_voiced_end = 0
        self._silent_frames = 0
        self._next_update = 0
        self._pause_levels: tuple[int, tuple[float, float]] | None = None  # (end, levels) of the last pause event

    @property
    def position(self) -> int:
        """Samples consumed from the current source."""
        return self._pos

    @property
    def memory(self) -> LevelMemory:
        """The source's level as known now, for :meth:`reset` of the segmenter that cuts its next clip."""
        return self._gain.memory

    @property
    def vad_gain_db(self) -> float:
        """The gain (dB) at which the VAD hears the source now."""
        return self._gain.db

    def process(self, audio: np.ndarray) -> list[SegmentEvent]:
        """Consume a chunk; return the events it completes, in order."""
        if self._rest.size:
            audio = np.concatenate([self._rest, audio])
        usable = audio.size - audio.size % self._frame
        self._rest = audio[usable:].copy()
        if not usable:
            return []
        chunk = np.ascontiguousarray(audio[:usable], np.float32)
        events: list[SegmentEvent] = []
        frame, vad, process = self._frame, self._vad, _webrtcvad.process
        step = 2 * frame
        vad_gain = self._gain
        gain, pcm, base = vad_gain.linear, self._pcm(chunk), 0
        # Copy the whole chunk into the history at once when it fits (the usual case); the state
        # machine below then only moves positions. Otherwise frame by frame, trimming while idle.
        bulk = self._n + usable <= self._buf.size
        if bulk:
            self._buf[self._n : self._n + usable] = chunk
            self._n += usable
        i, n = 0, usable // frame
        while i < n:
            if vad_gain.linear != gain:  # an utterance just ended and moved the gain: the rest is heard at the new one
                gain, pcm, base = vad_gain.linear, self._pcm(chunk[i * frame :]), i
            # the VAD runs ahead over the frames that cannot end an utterance (so cannot move the gain)
            ahead = min(n - i, self._frames_before_an_end())
            voiced = [process(vad, SAMPLE_RATE, pcm[k * step : (k + 1) * step], frame) for k in range(i - base, i - base + ahead)]
            for v in voiced:
                if not bulk:
                    self._append(chunk[i * frame : (i + 1) * frame])
                i += 1
                self._pos += frame
                if v or self._speaking or self._n_voiced:
                    self._step(v, events)
                else:  # idle and nothing voiced in the window: only the window moves on
                    self._flags.append(False)
        return events

    def flush(self) -> list[SegmentEvent]:
        """End of source: close an utterance in progress (its audio ends at the last voiced frame) and
        forget the source but for its level (:attr:`memory`) and the VAD's noise model, which a next clip
        of the same session carries on with (``reset(memory, keep_vad=True)``); ``reset()`` forgets them too."""
        events = self._close_open()
        self.reset(self.memory, keep_vad=True)
        return events

    def _close_open(self) -> list[SegmentEvent]:
        events: list[SegmentEvent] = []
        if self._speaking:
            self._close(min(self._last_voiced_end + self._pad, self._pos), "flush", events)
        return events

    # -- internals ---------------------------------------------------------------------------

    def _frames_before_an_end(self) -> int:
        """How many more frames can certainly be heard before an utterance can end (at least 1)."""
        if self.config.vad_target_dbfs is None:
            return 1 << 30  # the gain never moves
        if not self._speaking:
            # a start at the next frame (its pre-roll at most _keep_idle back), then a hangover or the max length
            return max(1, min(self._hang, (self._max - self._keep_idle) // self._frame))
        to_max = -(-(self._max - (self._pos - self._utt_start)) // self._frame)
        return max(1, min(self._hang - self._silent_frames, to_max))

    def _pcm(self, x: np.ndarray) -> memoryview:
        """16-bit PCM of x as the VAD hears it (at the current gain)."""
        gain = self._gain.linear
        if gain != 1.0:
            x = x * np.float32(gain)
        return memoryview((np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())

    def _append(self, frame: np.ndarray) -> None:
        if self._n + frame.size > self._buf.size:  # only while idle: keep the pre-roll
            keep = self._keep_idle
            self._buf[:keep] = self._buf[self._n - keep : self._n]
            self._t0 += self._n - keep
            self._n = keep
        self._buf[self._n : self._n + frame.size] = frame
        self._n += frame.size

    def _audio(self, start: int, end: int) -> np.ndarray:
        return self._buf[start - self._t0 : end - self._t0].copy()

    def _step(self, voiced: bool, events: list[SegmentEvent]) -> None:
        pos = self._pos
        if not self._speaking:
            flags = self._flags
            if len(flags) == self._window and flags[0]:
                self._n_voiced -= 1
            flags.append(voiced)
            self._n_voiced += voiced
            if self._n_voiced >= self._need:
                first = pos - self._frame * (len(flags) - flags.index(True))
                self._begin(max(first - self._pad, self._t0, 0), first, events)
                self._last_voiced_end = pos
            return
        if voiced:
            self._silent_frames = 0
            self._last_voiced_end = pos
        else:
            self._silent_frames += 1
            if self._silent_frames >= self._hang:
                self._close(min(self._last_voiced_end + self._pad, pos), "silence", events)
                return
            if self.interim and self._silent_frames == self._pause and self._last_voiced_end - self._first_voiced >= self._min:
                end = self._last_voiced_end + self._pad
                audio = self._audio(self._utt_start, end)
                levels = speech_levels(audio)
                self._pause_levels = (end, levels)  # the end event reuses them if the utterance ends right here
                if not self._gain.too_quiet(levels[0]):  # else its end is discarded: no work ahead
                    events.append(SegmentEvent("pause", self._utt_start, end, pos, audio))
        if pos - self._utt_start >= self._max:
            self._close(pos, "max_length", events)
            if voiced:  # the monologue goes on: the next piece starts right here, no pre-roll
                self._begin(pos, pos, events)
                self._last_voiced_end = pos
            return
        if self.interim and pos >= self._next_update:
            start = max(self._utt_start, pos - self._prov)
            events.append(SegmentEvent("update", self._utt_start, pos, pos, self._audio(start, pos)))
            self._next_update = pos + self._every

    def _begin(self, start: int, first_voiced: int, events: list[SegmentEvent]) -> None:
        # drop history before the utterance so the buffer can hold max_utterance_s of it
        drop = start - self._t0
        if drop > 0:
            self._buf[: self._n - drop] = self._buf[drop : self._n]
            self._n -= drop
            self._t0 = start
        self._speaking = True
        self._utt_start = start
        self._first_voiced = first_voiced
        self._silent_frames = 0
        self._next_update = start + self._every
        self._flags.clear()
        self._n_voiced = 0
        events.append(SegmentEvent("start", start, self._pos, self._pos))

    def _close(self, end: int, reason: str, events: list[SegmentEvent]) -> None:
        voiced_span = self._last_voiced_end - self._first_voiced
        audio = self._audio(self._utt_start, end) if voiced_span >= self._min else None
        if audio is None:
            levels = (-math.inf, -math.inf)
        elif self._pause_levels is not None and self._pause_levels[0] == end:
            levels = self._pause_levels[1]  # the same audio as the pause event's
        else:
            levels = speech_levels(audio)
        if audio is not None and not self._gain.too_quiet(levels[0]):
            events.append(SegmentEvent("end", self._utt_start, end, self._pos, audio, reason, levels, self._last_voiced_end))
            self._gain.observe(levels)
        else:
            events.append(SegmentEvent("discard", self._utt_start, end, self._pos, None, reason if audio is None else "quiet"))
        self._speaking = False
        self._pause_levels = None
        self._flags.clear()
        self._n_voiced = 0


def speech_levels(audio: np.ndarray) -> tuple[float, float]:
    """(peak, background) of an utterance in dBFS: the mean-square level of its loudest 10 ms and the
    5th percentile over its 10 ms frames (its padding and pauses: the noise around the voice)."""
    hop = SAMPLE_RATE // 100
    n = audio.size - audio.size % hop
    if n == 0:
        return -math.inf, -math.inf
    x = audio[:n].reshape(-1, hop).astype(np.float64)
    db = 10.0 * np.log10(np.einsum("ij,ij->i", x, x) / hop + 1e-20)
    # np.percentile(db, 5) (linear interpolation) by partition: np.percentile itself costs ~0.5 ms
    pos = 0.05 * (db.size - 1)
    lo = int(pos)
    hi = min(lo + 1, db.size - 1)
    part = np.partition(db, [lo, hi])
    return float(db.max()), float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


def session_utterances(audio: np.ndarray, config: SegmenterConfig | None = None,
                       memory: LevelMemory | None = None) -> tuple[list[SegmentEvent], LevelMemory]:
    """All finished utterances of a whole clip (``end`` events), as the live path finds them, and the
    source's level memory after it. ``memory``: the source's so far; a clip alone starts afresh."""
    seg = Segmenter(config, interim=False)
    seg.reset(memory)
    tail = np.zeros(seg._frame * seg._hang, np.float32)  # trailing silence lets the hangover end it
    events = seg.process(np.asarray(audio, np.float32)) + seg.process(tail) + seg._close_open()
    return [e for e in events if e.kind == "end"], seg.memory


def utterances(audio: np.ndarray, config: SegmenterConfig | None = None) -> list[SegmentEvent]:
    """All finished utterances of a clip heard alone (:func:`session_utterances` without memory)."""
    return session_utterances(audio, config)[0]


def span_of(audio: np.ndarray, found: Sequence[SegmentEvent]) -> np.ndarray | None:
    """The clip cut as the runtime cuts it: first utterance start to last utterance end."""
    if not found:
        return None
    audio = np.asarray(audio, np.float32)
    return audio[found[0].start : min(found[-1].end, audio.size)].copy()


def speech_span(audio: np.ndarray, config: SegmenterConfig | None = None) -> np.ndarray | None:
    """:func:`span_of` the utterances of a clip heard alone."""
    return span_of(audio, utterances(audio, config))
