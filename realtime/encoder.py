"""A pretrained speech encoder under the classifier: an utterance's Whisper log-mel frames go through
the first blocks of a Whisper-style transformer encoder (an ONNX graph shipped beside the model), and
the mean and standard deviation of the chosen blocks' output frames describe the utterance. The graph
has one output per chosen block; their frames are read side by side, in the graph's output order (the
trainer may join several encoders in one graph: to the runtime they are more outputs).

The log-mel is Whisper's (25 ms periodic Hann window, 10 ms hop, 80 Slaney mel bands, log10, floored
8 decades under the loudest value, scaled by (x + 4) / 4) computed on the utterance alone after its
waveform is scaled to zero mean and unit variance, so the description does not depend on input gain.
The utterance's quiet edges are left out first, as for the handcrafted features
(``features.trim_edges``). The encoder's positional table covers ``WINDOW_S`` seconds: a longer
utterance is encoded in windows of that length overlapping by ``OVERLAP_S``, and each output frame
is taken from the window where it lies furthest from an edge, so nothing is cut off.

The log-mel follows the numpy port of Hugging Face Transformers' ``WhisperFeatureExtractor`` that
pipecat-ai ships for Smart Turn (BSD-2-Clause; the Transformers original is Apache-2.0).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ser_live import features

LOGMEL_VERSION: int = 1
N_MELS: int = 80
HOP: int = 160  # 10 ms at 16 kHz
WINDOW_S: float = 8.0  # what the encoder's positional table covers
OVERLAP_S: float = 2.0  # overlap of consecutive windows of a longer utterance
_WIN = 400
_WINDOW = np.hanning(_WIN + 1)[:-1]  # periodic Hann
_MEL_FB = features.mel_filterbank(features.SAMPLE_RATE, _WIN, N_MELS).T.copy()  # (201, 80)
_WINDOW_FRAMES = int(WINDOW_S * features.SAMPLE_RATE) // HOP  # log-mel frames per window (800)
_STEP_FRAMES = _WINDOW_FRAMES - int(OVERLAP_S * features.SAMPLE_RATE) // HOP


class EncoderError(Exception):
    """The encoder file is missing, altered or not loadable; the message is meant for the user."""


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Whisper log-mel of one mono 16 kHz utterance: float32, shape (80, frames), frames = samples // 160."""
    x = np.asarray(audio, np.float32)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (_WIN // 2, _WIN // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, _WIN)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
    mel = np.log10(np.maximum(power @ _MEL_FB, 1e-10))[:-1].T
    return ((np.maximum(mel, mel.max() - 8.0) + 4.0) / 4.0).astype(np.float32)


def one_thread_session(model: bytes | str):
    """An ONNX Runtime CPU session of ``model`` (bytes or a path) pinned to one thread: the worker runs one
    utterance at a time, and the audio thread and the rest of the machine keep the other cores."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Encoder:
    """An ONNX Runtime session of the encoder, pinned to one thread; ``embed(audio)`` gives the
    pooled description (float32, ``2 * width`` values: frame mean, then frame standard deviation, where
    a frame is every output's frame side by side and ``width`` the sum of their widths)."""

    def __init__(self, path: Path | str, sha256: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EncoderError(f"encoder file {self.path} not found (it ships beside the model)")
        data = self.path.read_bytes()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise EncoderError(f"encoder file {self.path} is not the one the model was trained with (sha256 differs)")
        try:
            self._session = one_thread_session(data)
        except Exception as e:  # onnxruntime raises its own exception types for bad graphs
            raise EncoderError(f"{self.path} is not a loadable ONNX encoder: {str(e).splitlines()[0]}") from None
        self._input = self._session.get_inputs()[0].name
        outputs = self._session.get_outputs()
        self._outputs = [o.name for o in outputs]
        try:
            self.width = sum(int(o.shape[-1]) for o in outputs)
        except (TypeError, ValueError):
            raise EncoderError(f"{self.path}: an output's frame width is not fixed in the graph") from None
        self.size = 2 * self.width

    def frames(self, mel: np.ndarray) -> np.ndarray:
        """Output frames (one per 20 ms, shape (ceil(frames / 2), width)) of a log-mel (80, frames);
        longer than one window: windows overlapping by OVERLAP_S, each frame from the window where it
        lies furthest from an edge."""
        n = mel.shape[1]
        if n <= _WINDOW_FRAMES:
            return self._run(mel)
        last = n - _WINDOW_FRAMES + (n - _WINDOW_FRAMES) % 2  # even: output frames line up across windows
        starts = list(range(0, last, _STEP_FRAMES)) + [last]
        parts, done = [], 0  # done: output frames already taken
        for k, s in enumerate(starts):
            out = self._run(mel[:, s : s + _WINDOW_FRAMES])
            first = s // 2
            if k + 1 < len(starts):  # hand over halfway through the overlap with the next window
                end = (starts[k + 1] + s + _WINDOW_FRAMES) // 4
            else:
                end = first + out.shape[0]
            parts.append(out[done - first : end - first])
            done = end
        return np.concatenate(parts)

    def utterance_frames(self, audio: np.ndarray) -> np.ndarray:
        """The encoder's output frames (frames, width) of an utterance's 16 kHz audio, its quiet edges trimmed."""
        x = np.asarray(audio)
        if x.ndim != 1:
            raise ValueError(f"expected 1-D mono audio, got shape {x.shape}")
        x = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        x = features.trim_edges(x)
        if x.size < 2 * HOP:
            x = np.concatenate([x, np.zeros(2 * HOP - x.size)])
        return self.frames(log_mel(x))

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """Frame mean and standard deviation of the encoder's output frames over the utterance (edges trimmed)."""
        h = self.utterance_frames(audio)
        return np.concatenate([h.mean(axis=0), h.std(axis=0)]).astype(np.float32)

    def _run(self, mel: np.ndarray) -> np.ndarray:
        outs = self._session.run(self._outputs, {self._input: mel[None]})
        return outs[0][0] if len(outs) == 1 else np.concatenate([o[0] for o in outs], axis=-1)
