"""Microphone capture: a sounddevice callback that only copies blocks into the ring buffer.

``sounddevice`` is imported here and nowhere else, so file replay works on machines
without PortAudio.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from ser_live.events import StopReason
from ser_live.features import SAMPLE_RATE
from ser_live.pipeline import Pipeline

STALL_SECONDS = 3.0  # a microphone that delivers nothing this long has gone away
PORTAUDIO_HINT = "install PortAudio (Debian/Ubuntu: sudo apt-get install libportaudio2; macOS: brew install portaudio)"


class CaptureError(Exception):
    """The microphone cannot be used; the message is meant for the user."""


def _reason(e: Exception) -> str:
    """PortAudio's message without its error code and call name ("Error opening InputStream: Invalid
    sample rate [PaErrorCode -9997]" -> "invalid sample rate")."""
    text = re.sub(r"\s*\[PaErrorCode -?\d+\]", "", str(e)).split(": ")[-1].strip()
    return text[:1].lower() + text[1:]


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as e:  # the wheel for Linux does not bundle the PortAudio library
        raise CaptureError(f"microphone input needs PortAudio ({e}); {PORTAUDIO_HINT}") from None
    return sounddevice


def list_devices() -> str:
    """The input devices as PortAudio sees them, one per line."""
    sd = _sounddevice()
    default = sd.default.device[0]
    lines = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_input_channels"] > 0:
            mark = "*" if i == default else " "
            lines.append(f"{mark} {i:3d}  {d['name']}  ({d['max_input_channels']} ch, {d['default_samplerate']:.0f} Hz)")
    return "\n".join(lines) if lines else "no input devices found"


def resolve_device(device: str | None) -> tuple[int | None, str]:
    """(index or None for the default, device name) for an index or a name substring."""
    sd = _sounddevice()
    try:
        if device is None:
            info = sd.query_devices(kind="input")
            return None, str(info["name"])
        key: int | str = int(device) if device.isdigit() else device
        info = sd.query_devices(key, kind="input")
    except (ValueError, sd.PortAudioError) as e:
        if device is None:
            raise CaptureError("no microphone found (the system has no default input device); connect one, "
                               "or choose one with --device (see --list-devices)") from None
        raise CaptureError(f"unknown input device {device!r} (see --list-devices)") from None
    return int(info["index"]), str(info["name"])


class MicrophoneCapture:
    """A source (``pipeline.Source``): an input stream at 16 kHz mono when the device allows, else at its
    native rate (the pipeline resamples). Input overflows reported by PortAudio are counted by the pipeline."""

    def __init__(self, pipeline: Pipeline, device: str | None = None, block_ms: int = 30) -> None:
        sd = _sounddevice()
        self.pipeline = pipeline
        self.index, self.name = resolve_device(device)
        try:
            sd.check_input_settings(self.index, channels=1, samplerate=SAMPLE_RATE, dtype="float32")
            self.rate = SAMPLE_RATE
        except sd.PortAudioError:
            self.rate = int(sd.query_devices(self.index, kind="input")["default_samplerate"])
        self.failed = threading.Event()  # the stream ended without being asked to
        self._stopping = False
        self._last_written = 0  # the ring's total at the last look (ended), and when it last moved
        self._last_audio = time.monotonic()
        try:
            self._stream = sd.InputStream(
                samplerate=self.rate,
                blocksize=int(self.rate * block_ms / 1000),
                device=self.index,
                channels=1,
                dtype="float32",
                callback=self._callback,
                finished_callback=self._finished,
            )
        except sd.PortAudioError as e:
            raise CaptureError(f"cannot open input device {self.name!r} ({_reason(e)}); is another program "
                               "using it? (see --list-devices)") from None

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread
        if status.input_overflow:
            self.pipeline.count_overflow()
        self.pipeline.feed_audio(indata)

    def _finished(self) -> None:
        if not self._stopping:
            self.failed.set()

    def start(self) -> None:
        self.pipeline.begin_source(self.name, self.rate)
        self._last_written, self._last_audio = self.pipeline.ring.total_written, time.monotonic()
        self._stream.start()

    def ended(self) -> StopReason | None:
        """The device is gone: its stream ended unasked, or it delivered nothing for STALL_SECONDS."""
        now, written = time.monotonic(), self.pipeline.ring.total_written
        if written != self._last_written:
            self._last_written, self._last_audio = written, now
        if self.failed.is_set() or now - self._last_audio > STALL_SECONDS:
            return StopReason.DEVICE_STOPPED
        return None

    def describe(self) -> str:
        return f"listening on {self.name!r} at {self.rate} Hz"

    def stop(self) -> None:
        self._stopping = True
        self._stream.stop()
        self._stream.close()
        self.pipeline.end_source()
