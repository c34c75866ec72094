"""The model card: the JSON written beside a model, saying what it hears (feature version, encoder,
segmenter, speaker normaliser), what it was trained on and how, how it scored, and under which licence.
The runtime reads the first part (``ser_live.model``); the rest is for people."""

from __future__ import annotations

import datetime as _dt
import platform
from collections import Counter
from typing import Sequence

import numpy as np

from ser_live.features import SAMPLE_RATE
from ser_live.speaker_norm import CentroidOffset, SpeakerNorm
from ser_live.train import corpora as corp
from ser_live.train.augment import Corruption
from ser_live.train.export import INPUT_NAME, PROBA_NAME
from ser_live.train.model import BALANCING, Hyperparameters

CARD_FORMAT = "ser-live-model"
CARD_FORMAT_VERSION = 1


def library_versions() -> dict:
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    return {
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }


def corpora_summary(y: np.ndarray, groups: np.ndarray, corpora: np.ndarray, labels: Sequence[str]) -> dict:
    """Per corpus: clips, speakers, and clips per label (in ``labels`` order, labels it has)."""
    out = {}
    for name in sorted(set(corpora)):
        m = corpora == name
        counts = Counter(y[m])
        out[name] = {
            "clips": int(m.sum()),
            "speakers": sorted(set(groups[m])),
            "labels": {k: int(counts[k]) for k in labels if counts[k]},
        }
    return out


def training_summary(
    *,
    hp: Hyperparameters,
    alphas: Sequence[float],
    alphas_chosen: Sequence[float],
    corruptions: Sequence[Corruption],
    norm: SpeakerNorm | CentroidOffset | None,
    seed: int,
    folds: int,
    emotions: Sequence[str],
    clips: int,
    epochs: list[int],
    parity: float,
    temperature: float,
    feature: dict,
    skipped: dict,
) -> dict:
    """The card's ``training`` field: how the model was fitted (``hp``; ``alphas``: the candidates of the
    L2 search, ``alphas_chosen`` its choices), on what (``corruptions``: the augmented copies), with which
    normaliser, and what was checked (``parity``: ONNX against scikit-learn; ``temperature``)."""
    return {
        "estimator": "StandardScaler + MLPClassifier (scikit-learn); members merged into one MLP (mean logits)",
        "hyperparameters": hp.asdict(),
        **({"alpha_search": {
            "candidates": list(alphas),
            "method": "each model's alpha chosen by a 3-fold speaker-grouped CV on its own training rows "
                      "(mean of per-corpus UARs; ties to the first candidate)",
            "chosen": list(alphas_chosen),  # CV folds, cross-corpus training sets, then the final model
        }} if len(alphas) > 1 else {}),
        "balancing": BALANCING,
        "augmentation": {
            "copies": len(corruptions),
            "corruptions": [c.to_dict() for c in corruptions],
            "applied": "to the raw clip before it is cut and its features extracted, as the runtime would hear it",
        },
        "cut": "the runtime's segmenter; the clean clips of a speaker as one source in the seeded arrival order "
               "(the VAD gain follows the clips before), each augmented clip alone",
        "speaker_norm": {"method": "none"} if norm is None else {
            "method": norm.to_card()["method"],
            "shrink_clips": norm.to_card()["shrink_clips"],
            "combine": norm.combine,
            "sessions": "held-out speakers: each speaker's clips in a random order seeded by (seed, speaker), one session",
            "centroids": "each class's mean over the training rows (clean and augmented copies); in CV of the training "
                         "folds only",
            "adapted_head": "trained on the training rows with each speaker's offset (the mean of row minus the "
                            "centroid of its true class, per speaker and version of the clips) removed",
            "unadapted_head": "trained on the training rows as they are (the recipe without adaptation); the same "
                              "temperature",
        } if isinstance(norm, CentroidOffset) else {
            "method": norm.to_card()["method"],
            "prior_clips": norm.to_card()["prior_clips"],
            "memory_clips": norm.to_card().get("memory_clips"),
            "sessions": "each speaker's clips in a random order seeded by (seed, speaker), one session; each augmented "
                        "copy in the same order, cut into short sessions of 1-10 clips (seeded by copy and speaker)",
            "mean": "of the training rows (clean and augmented copies); in CV of the training folds only",
        },
        "seed": seed,
        "folds": folds,
        "emotions_requested": list(emotions),
        "calm_folded_into_neutral": "calm" not in emotions and "neutral" in emotions,
        "clips": int(clips),
        "training_rows": int(clips * (1 + len(corruptions))),
        "epochs": epochs,
        "onnx_parity_max_abs_diff": parity,
        "temperature": temperature,
        "features_source_sha256": feature["source_sha256"],
        "features_behaviour_sha256": feature["behaviour_sha256"],
        "skipped": skipped,
    }


def runtime_card(labels: Sequence[str], extractor_fields: dict, speaker_norm: SpeakerNorm | CentroidOffset | None = None) -> dict:
    """The fields the runtime reads, alone (a fold's model replayed by ``ser-evaluate``): format, labels,
    ``extractor_fields`` (``Extractor.card()``: input, feature version and size, encoder) and the normaliser."""
    card = {"format": CARD_FORMAT, "format_version": CARD_FORMAT_VERSION, "labels": list(labels), **extractor_fields}
    if speaker_norm is not None:
        card["speaker_norm"] = speaker_norm.to_card()
    return card


def make_card(
    *,
    labels: list[str],
    feature: dict,
    segmenter: dict,
    corpora: dict,
    metrics: dict,
    training: dict,
    speaker_norm: SpeakerNorm | CentroidOffset | None = None,
) -> dict:
    """The JSON card (``feature``: ``dataset.feature_info``; ``corpora``: :func:`corpora_summary`, whose
    corpora also give the licence and credits; ``training``: :func:`training_summary`); ``speaker_norm``
    adds the field the runtime normalises with (none: no such field). A model with an encoder also carries
    the encoder's licence and credit."""
    encoder = feature.get("encoder")
    card = {
        "format": CARD_FORMAT,
        "format_version": CARD_FORMAT_VERSION,
        "labels": list(labels),
        "input": feature.get("input", "handcrafted"),
        "feature_version": feature["feature_version"],
        "feature_size": feature["feature_size"],
        "feature_params": feature["feature_params"],
        "segmenter": segmenter,
        "sample_rate": SAMPLE_RATE,
        "input_name": INPUT_NAME,
        "output_name": PROBA_NAME,
        "corpora": corpora,
        "metrics": metrics,
        "training": training,
        "library_versions": library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "licence": corp.licence_text(corpora) + (
            "; the encoder file beside the model is " + "; ".join(
                f"{e['licence']} ({e['package']} {e['version']})" for e in encoder_sources(encoder)) if encoder else ""),
        "credits": [corp.CORPORA[c].credit for c in corpora] + [e["credit"] for e in encoder_sources(encoder or {})],
    }
    if encoder:
        card["encoder"] = encoder
    if speaker_norm is not None:
        card["speaker_norm"] = speaker_norm.to_card()
    return card


def encoder_sources(encoder: dict) -> list[dict]:
    """The source packages a card's encoder records (one each, for encoders joined side by side)."""
    return encoder.get("sources") or ([encoder["source"]] if "source" in encoder else [])
