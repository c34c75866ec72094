"""ser-live: real-time speech emotion recognition. The library's entry points (loaded on first use, so
that importing the package stays light): :class:`Detector` (feed audio chunks, get speech and emotion
events), :func:`score_file` (the utterances of a recording) and their result types; see ``ser_live.api``."""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Detector", "score_file", "Prediction", "Utterance", "Provisional", "SpeechStart", "SpeechEnd",
           "ModelError"]

if TYPE_CHECKING:
    from ser_live.api import Detector, ModelError, Prediction, Provisional, SpeechEnd, SpeechStart, Utterance, score_file


def __getattr__(name: str) -> object:
    if name in __all__:
        from ser_live import api

        return getattr(api, name)
    raise AttributeError(f"module 'ser_live' has no attribute {name!r}")
