"""Emotional speech corpora: file-name parsers, licences, discovery and label sets.

Each corpus is recognised by its own file-naming convention. To add one (TESS, SAVEE, EMO-DB, ...)
write a parser ``stem -> (speaker, label) | None`` with a docstring naming the convention and add a
``Corpus`` entry to ``CORPORA``; nothing else needs to change.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

#: Canonical emotion names, in a fixed order.
EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
#: Default label set: calm is folded into neutral.
DEFAULT_EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
#: Audio file extensions that are looked at (lower case).
AUDIO_EXTENSIONS: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".mp3"})


@dataclass(frozen=True)
class Clip:
    """One labelled recording. ``speaker`` is namespaced by corpus, e.g. ``ravdess:01``."""

    path: Path
    corpus: str
    speaker: str
    label: str  # canonical emotion name, before folding into a label set


Parser = Callable[[str], "tuple[str, str] | None"]


@dataclass(frozen=True)
class Corpus:
    name: str
    parse: Parser
    licence: str
    non_commercial: bool
    credit: str


# --------------------------------------------------------------------------------------- parsers

_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_RAVDESS_EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}


def parse_ravdess(stem: str) -> tuple[str, str] | None:
    """RAVDESS ``MM-VV-EE-II-SS-RR-AA``: modality 03 (audio-only), vocal channel 01 (speech),
    EE emotion 01..08, II intensity, SS statement, RR repetition, AA actor. Song and video are rejected."""
    m = _RAVDESS_RE.match(stem)
    if m is None:
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
    if modality != "03" or channel != "01" or emotion not in _RAVDESS_EMOTIONS:
        return None
    if intensity not in ("01", "02") or statement not in ("01", "02") or actor == "00":
        return None
    return actor, _RAVDESS_EMOTIONS[emotion]


_CREMA_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA_LEVELS = frozenset({"LO", "MD", "HI", "XX"})


def parse_crema_d(stem: str) -> tuple[str, str] | None:
    """CREMA-D ``AAAA_SSS_EEE_LL``: AAAA actor (1001..1091), SSS sentence code, EEE emotion
    (ANG DIS FEA HAP NEU SAD), LL level (LO MD HI XX)."""
    m = _CREMA_RE.match(stem)
    if m is None:
        return None
    actor, _sentence, emotion, level = m.groups()
    if emotion not in _CREMA_EMOTIONS or level not in _CREMA_LEVELS:
        return None
    return actor, _CREMA_EMOTIONS[emotion]


#: Where a corpus's file names say the sentence: (pattern, group).
_SENTENCE_FIELD = {"ravdess": (_RAVDESS_RE, 5), "crema-d": (_CREMA_RE, 2)}


def sentence(clip: Clip) -> str | None:
    """The fixed sentence a clip speaks: the RAVDESS statement (01, 02) or the CREMA-D sentence code;
    None for a corpus whose file names do not say."""
    pattern, group = _SENTENCE_FIELD.get(clip.corpus, (None, 0))
    m = pattern.match(clip.path.stem) if pattern is not None else None
    return None if m is None else m.group(group)


#: Registry of known corpora; the first parser that accepts a file name wins.
CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus(
            name="ravdess",
            parse=parse_ravdess,
            licence="CC BY-NC-SA 4.0",
            non_commercial=True,
            credit=(
                "RAVDESS: Livingstone SR, Russo FA (2018). The Ryerson Audio-Visual Database of Emotional "
                "Speech and Song (RAVDESS). PLoS ONE 13(5): e0196391. doi:10.1371/journal.pone.0196391. "
                "CC BY-NC-SA 4.0."
            ),
        ),
        Corpus(
            name="crema-d",
            parse=parse_crema_d,
            licence="ODbL",
            non_commercial=False,
            credit=(
                "CREMA-D: Cao H, Cooper DG, Keutmann MK, Gur RC, Nenkova A, Verma R (2014). CREMA-D: "
                "Crowd-sourced Emotional Multimodal Actors Dataset. IEEE Trans. Affective Computing 5(4): "
                "377-390. Open Database License (ODbL) with the Database Contents License."
            ),
        ),
    )
}


def parse_path(path: Path) -> Clip | None:
    """Recognise ``path`` by its file name; None if no corpus claims it (or it isn't audio)."""
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        return None
    for corpus in CORPORA.values():
        parsed = corpus.parse(path.stem)
        if parsed is not None:
            speaker, label = parsed
            return Clip(path=path, corpus=corpus.name, speaker=f"{corpus.name}:{speaker}", label=label)
    return None


# --------------------------------------------------------------------------------------- labels


class LabelError(ValueError):
    """An emotion name that isn't one of EMOTIONS."""


def resolve_emotions(names: Iterable[str] | None) -> tuple[str, ...]:
    """Validate a requested label set (case-insensitive), returned in canonical order."""
    if names is None:
        return DEFAULT_EMOTIONS
    wanted = {n.strip().lower() for n in names if n.strip()}
    unknown = sorted(wanted - set(EMOTIONS))
    if unknown:
        raise LabelError(f"unknown emotion {', '.join(unknown)} (known: {', '.join(EMOTIONS)})")
    if len(wanted) < 2:
        raise LabelError("need at least two emotions")
    return tuple(e for e in EMOTIONS if e in wanted)


def map_label(label: str, emotions: tuple[str, ...]) -> str | None:
    """Label of a clip within ``emotions``: calm folds into neutral only when calm isn't requested
    (and neutral is); labels outside the set give None (the clip is skipped)."""
    if label == "calm" and "calm" not in emotions:
        label = "neutral"
    return label if label in emotions else None


# --------------------------------------------------------------------------------------- discovery


@dataclass
class Discovery:
    clips: list[Clip] = field(default_factory=list)
    unknown_names: int = 0  # audio files no corpus recognised
    skipped_labels: Counter = field(default_factory=Counter)  # label -> clips outside the label set


def discover(roots: Iterable[Path], emotions: tuple[str, ...]) -> Discovery:
    """Walk ``roots`` recursively, parse every audio file name and apply the label set.

    Returned clips carry the label already mapped into ``emotions``; clips are sorted by path so the
    order (and hence training) is reproducible."""
    out = Discovery()
    seen: set[Path] = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            for fn in sorted(filenames):
                path = Path(dirpath) / fn
                if path.suffix.lower() not in AUDIO_EXTENSIONS:
                    continue
                resolved = path.resolve()
                if resolved in seen:
                    continue
                seen.add(resolved)
                clip = parse_path(path)
                if clip is None:
                    out.unknown_names += 1
                    continue
                label = map_label(clip.label, emotions)
                if label is None:
                    out.skipped_labels[clip.label] += 1
                    continue
                out.clips.append(Clip(path=resolved, corpus=clip.corpus, speaker=clip.speaker, label=label))
    out.clips.sort(key=lambda c: (c.corpus, c.speaker, str(c.path)))
    return out


def licence_text(corpora: Iterable[str]) -> str:
    """Licence statement of a model trained on ``corpora`` (names in CORPORA)."""
    used = [CORPORA[c] for c in sorted(set(corpora))]
    nc = [c for c in used if c.non_commercial]
    other = [c for c in used if not c.non_commercial]
    parts = []
    if nc:
        licences = " + ".join(sorted({c.licence for c in nc}))
        parts.append(f"{licences} (non-commercial) because trained on {', '.join(c.name.upper() for c in nc)}")
    for c in other:
        parts.append(f"{c.name.upper()} under {c.licence}")
    return "; ".join(parts)
