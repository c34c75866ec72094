"""Load an emotion model: an ONNX graph plus its JSON card, checked against this runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ser_live import features
from ser_live.encoder import EncoderError, file_sha256, one_thread_session
from ser_live.extractor import Extractor, ExtractorError
from ser_live.speaker_norm import CentroidOffset, SpeakerNorm, SpeakerNormError
from ser_live.speaker_norm import from_card as speaker_norm_from_card


class ModelError(Exception):
    """The model or its card cannot be used; the message is meant for the user."""


def card_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def read_card(model_path: Path) -> dict:
    path = card_path(model_path)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model card {path} not found (every model needs its JSON card beside it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"model card {path} is unreadable: {e}") from None
    if not isinstance(card, dict) or card.get("format") != "ser-live-model":
        raise ModelError(f"{path} is not a ser-live model card")
    labels = card.get("labels")
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        raise ModelError(f"model card {path} has no valid 'labels' list")
    version = card.get("feature_version")
    if version != features.FEATURE_VERSION:
        raise ModelError(
            f"model {model_path.name} needs feature version {version}, this ser-live computes "
            f"version {features.FEATURE_VERSION}: retrain it with this version's ser-train"
        )
    return card


def read_extractor(card: dict, model_path: Path) -> Extractor:
    """What the model hears (handcrafted features, an encoder, or both), checked against the card."""
    try:
        extractor = Extractor.from_card(card, model_path)
    except (ExtractorError, EncoderError) as e:
        raise ModelError(f"model {model_path.name}: {e}") from None
    if card.get("feature_size") != extractor.size:
        raise ModelError(
            f"model card {card_path(model_path)} says feature_size {card.get('feature_size')}, "
            f"its input ({extractor.kind}) has {extractor.size} values"
        )
    return extractor


def read_speaker_norm(card: dict, model_path: Path, size: int) -> SpeakerNorm | CentroidOffset | None:
    """The card's causal speaker adaptation, or None when it has no ``speaker_norm`` field."""
    if "speaker_norm" not in card:
        return None
    try:
        return speaker_norm_from_card(card["speaker_norm"], size, len(card["labels"]))
    except SpeakerNormError as e:
        raise ModelError(f"model card {card_path(model_path)}: {e}") from None


class _Head:
    """One ONNX classifier head (input ``features`` [N, size] -> ``probabilities`` [N, labels]) on one thread."""

    def __init__(self, path: Path, card: dict, size: int, labels: int) -> None:
        try:
            self._session = one_thread_session(str(path))
        except Exception as e:  # onnxruntime raises its own exception types for bad graphs
            raise ModelError(f"{path} is not a loadable ONNX model: {str(e).splitlines()[0]}") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        self._input = card.get("input_name", inputs[0].name)
        self._output = card.get("output_name", outputs[-1].name)
        if self._input not in {i.name for i in inputs} or self._output not in {o.name for o in outputs}:
            raise ModelError(f"{path} does not have the input/output its card names")
        shape = inputs[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != size):
            raise ModelError(f"{path} expects input shape {shape}, the model's input gives {size} values")
        probs = self(np.zeros(size, np.float32))  # warm-up and check
        if probs.shape != (labels,):
            raise ModelError(f"{path} gives {probs.shape[0]} outputs but its card lists {labels} labels")

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        x = np.asarray(vector, np.float32).reshape(1, -1)
        return np.asarray(self._session.run([self._output], {self._input: x})[0], np.float32)[0]


def read_unadapted(card: dict, model_path: Path, norm: CentroidOffset, size: int) -> _Head:
    """The unadapted head the centroid offset names, beside ``model_path``, checked against its sha256."""
    path = Path(model_path).parent / str(norm.unadapted_file)
    where = f"model {Path(model_path).name}: its unadapted head {path.name}"
    if not path.is_file():
        raise ModelError(f"{where} is missing (it must sit beside the model)")
    if file_sha256(path) != norm.unadapted_sha256:
        raise ModelError(f"{where} does not match the sha256 in the card (altered or from another model)")
    return _Head(path, card, size, len(card["labels"]))


class EmotionModel:
    """An ONNX Runtime session pinned to one thread, created once, plus the card's labels, what the
    model hears (``extractor``: ``extract(audio)`` gives ``predict``'s input) and its speaker
    adaptation (``speaker_norm``, None for a model without it; with the centroid offset, ``unadapted``
    is the second head it needs, else None)."""

    def __init__(self, model_path: Path | str) -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} not found")
        self.card = read_card(self.path)
        self.labels: list[str] = list(self.card["labels"])
        self.extractor = read_extractor(self.card, self.path)
        self.speaker_norm = read_speaker_norm(self.card, self.path, self.extractor.size)
        self._head = _Head(self.path, self.card, self.extractor.size, len(self.labels))
        self.unadapted: _Head | None = None
        if isinstance(self.speaker_norm, CentroidOffset):
            self.unadapted = read_unadapted(self.card, self.path, self.speaker_norm, self.extractor.size)

    def extract(self, audio: np.ndarray) -> np.ndarray:
        """The model's input vector for one mono 16 kHz utterance (before speaker normalisation)."""
        return self.extractor.extract(audio)

    def predict(self, vector: np.ndarray) -> np.ndarray:
        """Class probabilities (in ``labels`` order) for one feature vector, by the model's head alone
        (after any speaker adaptation)."""
        return self._head(vector)
