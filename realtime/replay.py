"""File replay: decode files block by block and feed them to the pipeline like a microphone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from ser_live.events import End, Event, SourceFailed, StopReason
from ser_live.model import EmotionModel
from ser_live.pipeline import Pipeline

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}
BLOCK_SECONDS = 0.03  # paced replay writes blocks like a microphone callback would
READ_FRAMES = 16384  # decode this much per call: every SoundFile.read seeks, which is slow on FLAC
MIN_RATE, MAX_RATE = 1000, 384000  # sample rates accepted (Hz)
MAX_CHANNELS = 64  # a block with more columns than this is taken for channels-first audio and refused
SessionMode = Literal["per-file", "per-folder", "one"]
SESSIONS: tuple[SessionMode, ...] = ("per-file", "per-folder", "one")


class InputError(Exception):
    """A path given on the command line cannot be used; the message is meant for the user."""


def expand_paths(paths: list[str]) -> tuple[list[Path], list[SourceFailed]]:
    """Files as given plus the audio files found (recursively, sorted) in given folders."""
    files: list[Path] = []
    missing: list[SourceFailed] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                missing.append(SourceFailed(raw, "folder contains no audio files"))
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            missing.append(SourceFailed(raw, "no such file or folder"))
    return files, missing


def open_audio(path: Path) -> sf.SoundFile:
    """Open an audio file for block reading, or raise InputError with a one-line reason."""
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        reason = str(e).split(":")[-1].strip() or type(e).__name__
        raise InputError(f"not a readable audio file ({reason})") from None
    if f.frames == 0:
        f.close()
        raise InputError("contains no audio samples")
    if not MIN_RATE <= f.samplerate <= MAX_RATE:
        f.close()
        raise InputError(f"unsupported sample rate {f.samplerate} Hz")
    return f


def to_mono(block: np.ndarray) -> np.ndarray:
    """A new float32 mono array in [-1, 1] from samples shaped (frames,) or (frames, channels): channels
    averaged, signed integers scaled by their full scale (int16 by 1/32768, as libsndfile reads them), NaN
    zeroed, beyond full scale clipped (as a real converter would). ValueError for any other input."""
    block = np.asarray(block)
    if block.ndim not in (1, 2) or (block.ndim == 2 and not 1 <= block.shape[1] <= MAX_CHANNELS):
        raise ValueError(f"audio must be shaped (frames,) or (frames, channels) with 1-{MAX_CHANNELS} channels, "
                         f"got shape {block.shape}")
    if block.dtype.kind == "i":
        block = block / np.float32(-np.iinfo(block.dtype).min)
    elif block.dtype.kind != "f":
        raise ValueError(f"audio must be signed integer or floating-point samples, got {block.dtype}")
    if block.ndim == 1:
        mono = np.array(block, np.float32)
    else:
        with np.errstate(invalid="ignore", over="ignore"):  # +inf and -inf channels mix to NaN: zeroed next
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else np.array(block[:, 0], np.float32)
    np.nan_to_num(mono, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(mono, -1.0, 1.0, out=mono)
    return mono


def mono_blocks(f: sf.SoundFile, frames: int) -> Iterator[np.ndarray]:
    """The rest of an open file decoded ``frames`` at a time, each block float32 mono (:func:`to_mono`)."""
    while (data := f.read(frames, dtype="float32", always_2d=True)).size:
        yield to_mono(data)


def speaker_of(path: Path, index: int, session: SessionMode) -> object:
    """Who speaks in the ``index``-th file of a replay: files with equal values are one speaker
    (``per-file``: each file its own; ``per-folder``: the files of one folder; ``one``: all)."""
    if session not in SESSIONS:
        raise ValueError(f"session must be one of {', '.join(SESSIONS)}, got {session!r}")
    return index if session == "per-file" else path.parent if session == "per-folder" else None


class FileReplay:
    """A source (``pipeline.Source``): feeds files through the pipeline on its own thread, paced at
    ``speed`` x real time. ``speed=0`` replays as fast as the pipeline takes it (and then nothing is dropped).
    ``session``: which files are one speaker (see :func:`speaker_of`): the VAD gain and the speaker
    normalisation of a file go on from the last file of the same speaker replayed just before it.
    """

    def __init__(self, pipeline: Pipeline, files: list[Path], speed: float = 1.0, session: SessionMode = "per-file") -> None:
        self.pipeline = pipeline
        self.files = files
        self.speed = speed
        self._speakers = [speaker_of(f, i, session) for i, f in enumerate(files)]
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ser-replay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop feeding; the current file's end marker is in place when this returns (within ms)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def ended(self) -> StopReason | None:
        return StopReason.END_OF_FILES if self.done.is_set() else None

    def describe(self) -> str:
        pace = "as fast as possible" if self.speed == 0 else f"at {self.speed:g}x real time"
        return f"replaying {len(self.files)} file(s) {pace}"

    def _run(self) -> None:
        try:
            last = object()  # the speaker of the last file begun: nobody yet
            for path, speaker in zip(self.files, self._speakers):
                if self._stop.is_set():
                    break
                if self._replay(path, same_speaker=speaker == last):
                    last = speaker
        finally:
            self.done.set()

    def _replay(self, path: Path, same_speaker: bool) -> bool:
        """Feed one file (False: it could not be opened, nothing was fed)."""
        p = self.pipeline
        try:
            f = open_audio(path)
        except InputError as e:
            p.emit(SourceFailed(str(path), str(e)))
            return False
        with f:
            rate = f.samplerate
            block = max(1, int(rate * BLOCK_SECONDS))
            p.begin_source(str(path), rate, same_speaker)
            t0, fed = time.monotonic(), 0
            read = max(block, READ_FRAMES // block * block)
            try:
                for mono in mono_blocks(f, read):
                    if self._stop.is_set():
                        break
                    if self.speed == 0:  # as fast as the pipeline takes it: no need for small blocks
                        p.feed_audio(mono, until=self._stop)
                        fed += mono.size
                        continue
                    for i in range(0, mono.size, block):
                        if self._stop.is_set():
                            break
                        delay = t0 + fed / rate / self.speed - time.monotonic()
                        if delay > 0:
                            self._stop.wait(delay)
                        p.feed_audio(mono[i : i + block])
                        fed += min(block, mono.size - i)
            except Exception as e:  # truncated or corrupt data part-way through the file
                reason = str(e).split(":")[-1].strip() or type(e).__name__
                p.emit(SourceFailed(str(path), f"decoding stopped after {fed / rate:.2f} s ({reason})"))
            finally:
                p.end_source()
        return True


def replay_files(model: EmotionModel, files: list[Path], speed: float = 0.0, timeout: float = 120.0) -> list[Event]:
    """Replay ``files`` through a fresh pipeline to their end (batch mode at ``speed`` 0) and return
    everything it emitted before :class:`End`, in order: results, speech states, failed files. The live
    path, for the evaluation and the tests."""
    pipe = Pipeline(model, batch=speed == 0)
    pipe.start()
    replay = FileReplay(pipe, files, speed)
    replay.start()
    replay.join()
    pipe.close()
    items = []
    while not isinstance(item := pipe.results.get(timeout=timeout), End):
        items.append(item)
    return items
