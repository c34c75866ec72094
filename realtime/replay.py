"""File replay: decode files block by block and feed them to the pipeline like a microphone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from ser_live.events import End, Event, SourceFailed, SourceTruncated, StopReason
from ser_live.model import EmotionModel
from ser_live.pipeline import Pipeline

#: what libsndfile reads (tried first: it is fast and exact about lengths)
SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}
#: what phones and video calls record: AAC in MP4/M4A, Opus in WebM, and the like, decoded by FFmpeg (PyAV)
CONTAINER_SUFFIXES = {".m4a", ".mp4", ".aac", ".webm", ".mkv", ".mka", ".mov", ".3gp", ".wma", ".amr"}
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES | CONTAINER_SUFFIXES
BLOCK_SECONDS = 0.03  # paced replay writes blocks like a microphone callback would
READ_FRAMES = 16384  # decode this much per call: every SoundFile.read seeks, which is slow on FLAC
MIN_RATE, MAX_RATE = 1000, 384000  # sample rates accepted (Hz)
MAX_CHANNELS = 64  # a block with more columns than this is taken for channels-first audio and refused
SessionMode = Literal["per-file", "per-folder", "one"]
SESSIONS: tuple[SessionMode, ...] = ("per-file", "per-folder", "one")


class InputError(Exception):
    """A path given on the command line cannot be used; the message is meant for the user."""


class Truncated(Exception):
    """A file ends before what its header promises, or its data stops decoding part-way."""


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


def _reason(e: Exception) -> str:
    return str(e).split(":")[-1].strip() or type(e).__name__


class AudioFile:
    """An audio file decoded block by block into float32 (frames, channels) arrays at its own rate.

    libsndfile reads what it can (WAV, FLAC, OGG, MP3, ...); anything else goes to FFmpeg's decoders
    through PyAV (AAC in M4A/MP4, Opus in WebM, ...). ``blocks`` raises :class:`Truncated` after the last
    block it could decode when the file holds less than its header promises or stops decoding part-way.
    """

    samplerate: int

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SoundFileAudio(AudioFile):
    def __init__(self, f: sf.SoundFile, promised: int | None) -> None:
        self._f = f
        self.samplerate = f.samplerate
        self._promised = promised

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        read = 0
        while True:
            try:
                data = self._f.read(frames, dtype="float32", always_2d=True)
            except Exception as e:  # corrupt data part-way through the file
                raise Truncated(f"decoding stopped after {read / self.samplerate:.2f} s ({_reason(e)})") from None
            if not data.size:
                break
            read += len(data)
            yield data
        if self._promised is not None and read < self._promised:
            raise Truncated(f"ends after {read / self.samplerate:.2f} s of the {self._promised / self.samplerate:.2f} s "
                            "its header promises (cut off?)")

    def close(self) -> None:
        self._f.close()


_PCM_BYTES = {  # bytes per sample of the WAV subtypes whose length follows from the data chunk's size
    "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8, "ULAW": 1, "ALAW": 1,
}


def _wav_promised_frames(path: Path, f: sf.SoundFile) -> int | None:
    """The frames a RIFF/WAVE file's data chunk header promises (libsndfile itself trusts the file size
    over a data chunk that runs past the end), or None for other formats and unreadable headers."""
    if f.format != "WAV" or f.subtype not in _PCM_BYTES:
        return None
    with open(path, "rb") as raw:
        head = raw.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while len(chunk := raw.read(8)) == 8:
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                if size in (0, 0xFFFFFFFF):  # unknown length: written by a recorder still running
                    return None
                return size // (_PCM_BYTES[f.subtype] * f.channels)
            raw.seek(size + (size & 1), 1)
    return None


class _AvAudio(AudioFile):
    def __init__(self, path: Path) -> None:
        import av  # FFmpeg's decoders: loaded only for the files libsndfile cannot read

        self._av = av
        try:
            self._container = av.open(str(path), metadata_errors="ignore")
        except Exception as e:  # av.error.FFmpegError and its kin, or a file that is no container
            raise InputError(f"not a readable audio file ({_reason(e)})") from None
        if not self._container.streams.audio:
            self._container.close()
            raise InputError("contains no audio stream")
        self._stream = self._container.streams.audio[0]
        self.samplerate = int(self._stream.codec_context.sample_rate or 0)

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        resampler = self._av.AudioResampler(format="fltp")  # planar float32, same layout and rate
        pending: list[np.ndarray] = []
        have = read = 0
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        pending.append(out.to_ndarray().T)
                        have += out.samples
                if have >= frames:
                    block = np.concatenate(pending)
                    pending, have, read = [], 0, read + len(block)
                    yield block
        except Exception as e:  # av.error.FFmpegError mostly: corrupt or missing data part-way through the file
            if pending:
                yield np.concatenate(pending)
                read += have
            raise Truncated(f"decoding stopped after {read / self.samplerate:.2f} s ({_reason(e)})") from None
        if pending:
            yield np.concatenate(pending)

    def close(self) -> None:
        self._container.close()


def open_audio(path: Path) -> AudioFile:
    """Open an audio file for block reading, or raise InputError with a one-line reason."""
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError or TypeError: try FFmpeg's decoders
        try:
            audio: AudioFile = _AvAudio(path)
        except InputError:
            if path.suffix.lower() in CONTAINER_SUFFIXES:
                raise
            raise InputError(f"not a readable audio file ({_reason(e)})") from None
    else:
        if f.frames == 0:
            f.close()
            raise InputError("contains no audio samples")
        audio = _SoundFileAudio(f, _wav_promised_frames(path, f))
    if not MIN_RATE <= audio.samplerate <= MAX_RATE:
        audio.close()
        raise InputError(f"unsupported sample rate {audio.samplerate} Hz")
    return audio


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


def mono_blocks(f: AudioFile, frames: int) -> Iterator[np.ndarray]:
    """The rest of an open file decoded ``frames`` at a time, each block float32 mono (:func:`to_mono`);
    :class:`Truncated` after the last block when the file holds less than it promises."""
    for data in f.blocks(frames):
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
                        continue
                    for i in range(0, mono.size, block):
                        if self._stop.is_set():
                            break
                        delay = t0 + fed / rate / self.speed - time.monotonic()
                        if delay > 0:
                            self._stop.wait(delay)
                        p.feed_audio(mono[i : i + block])
                        fed += min(block, mono.size - i)
            except Truncated as e:  # what could be decoded has been fed: the rest is missing
                p.emit(SourceTruncated(str(path), str(e)))
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
