"""What a model hears of an utterance: the handcrafted features (``features.extract``), a pretrained
encoder's description (``encoder.Encoder.embed``), or both side by side. One object serves the
runtime's worker and the trainer, so both compute a model's input the same way; its ``card()`` is
what a model card records and ``from_card`` what the runtime checks a card against."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser_live import features
from ser_live.encoder import LOGMEL_VERSION, Encoder

POOLING = "mean+sd"


class ExtractorError(ValueError):
    """A card asks for an input this runtime cannot compute; the message is meant for the user."""


class Extractor:
    """``extract(audio)`` -> float32 vector of ``size`` values: the encoder's description first (when
    there is an encoder), then the handcrafted features (when ``handcrafted``)."""

    def __init__(self, encoder: Encoder | None = None, handcrafted: bool = True, encoder_info: dict | None = None):
        if encoder is None and not handcrafted:
            raise ExtractorError("a model needs the handcrafted features, an encoder, or both")
        self.encoder = encoder
        self.handcrafted = handcrafted
        self.encoder_info = dict(encoder_info or {})  # name, blocks, source: what the card records
        self.size = (encoder.size if encoder is not None else 0) + (features.FEATURE_SIZE if handcrafted else 0)

    @property
    def kind(self) -> str:
        return "+".join(k for k, on in (("encoder", self.encoder is not None), ("handcrafted", self.handcrafted)) if on)

    def extract(self, audio: np.ndarray) -> np.ndarray:
        parts = []
        if self.encoder is not None:
            parts.append(self.encoder.embed(audio))
        if self.handcrafted:
            parts.append(features.extract(audio))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def card(self, encoder_file: str | None = None) -> dict:
        """The card fields that describe this input (``encoder_file``: the encoder's name beside the model)."""
        out: dict = {"input": self.kind, "feature_version": features.FEATURE_VERSION, "feature_size": self.size}
        if self.encoder is not None:
            from ser_live.encoder import file_sha256

            out["encoder"] = {
                **self.encoder_info,
                "file": encoder_file or self.encoder.path.name,
                "sha256": file_sha256(self.encoder.path),
                "width": self.encoder.width,
                "pooling": POOLING,
                "logmel_version": LOGMEL_VERSION,
            }
        return out

    @classmethod
    def from_card(cls, card: dict, model_path: Path) -> Extractor:
        """The extractor a model card asks for, its encoder loaded from beside ``model_path`` and checked."""
        kind = card.get("input", "handcrafted")
        if kind not in ("handcrafted", "encoder", "encoder+handcrafted"):
            raise ExtractorError(f"model input {kind!r} is not known to this ser-live")
        encoder = None
        info = card.get("encoder")
        if "encoder" in kind:
            if not isinstance(info, dict) or not isinstance(info.get("file"), str):
                raise ExtractorError("the card names no encoder file")
            if info.get("logmel_version") != LOGMEL_VERSION or info.get("pooling") != POOLING:
                raise ExtractorError(
                    f"the model's encoder input (log-mel version {info.get('logmel_version')}, pooling "
                    f"{info.get('pooling')!r}) is not what this ser-live computes (log-mel version {LOGMEL_VERSION}, "
                    f"pooling {POOLING!r}): retrain it with this version's ser-train")
            encoder = Encoder(Path(model_path).parent / info["file"], info.get("sha256"))
            if encoder.width != info.get("width"):
                raise ExtractorError(f"encoder {info['file']} gives {encoder.width} values a frame, the card says {info.get('width')}")
        return cls(encoder, "handcrafted" in kind, {k: v for k, v in (info or {}).items()
                                                    if k in ("name", "blocks", "block", "source", "sources")})

    def __getstate__(self) -> dict:  # worker processes reload the encoder from its file
        path = None if self.encoder is None else str(self.encoder.path)
        return {"path": path, "handcrafted": self.handcrafted, "info": self.encoder_info}

    def __setstate__(self, state: dict) -> None:
        self.__init__(None if state["path"] is None else Encoder(state["path"]), state["handcrafted"], state["info"])
