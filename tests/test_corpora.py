"""Corpus file-name parsing, label-set folding and discovery (train/corpora.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import data_dir
from ser_live.train import corpora as corp


@pytest.mark.parametrize(
    "name, corpus, speaker, label",
    [
        ("03-01-01-01-01-01-01.flac", "ravdess", "ravdess:01", "neutral"),
        ("03-01-02-02-02-02-20.wav", "ravdess", "ravdess:20", "calm"),
        ("03-01-05-01-01-01-07.flac", "ravdess", "ravdess:07", "angry"),
        ("03-01-08-02-01-02-24.mp3", "ravdess", "ravdess:24", "surprised"),
        ("1001_DFA_ANG_XX.flac", "crema-d", "crema-d:1001", "angry"),
        ("1091_IEO_HAP_HI.ogg", "crema-d", "crema-d:1091", "happy"),
        ("1015_TIE_NEU_XX.WAV", "crema-d", "crema-d:1015", "neutral"),
        ("1076_MTI_FEA_LO.flac", "crema-d", "crema-d:1076", "fearful"),
        ("1002_ITH_DIS_MD.flac", "crema-d", "crema-d:1002", "disgust"),
        ("1030_WSI_SAD_XX.flac", "crema-d", "crema-d:1030", "sad"),
    ],
)
def test_parse_known_names(name, corpus, speaker, label):
    clip = corp.parse_path(Path("/x") / name)
    assert clip is not None
    assert (clip.corpus, clip.speaker, clip.label) == (corpus, speaker, label)


@pytest.mark.parametrize(
    "name",
    [
        "03-02-01-01-01-01-01.flac",  # RAVDESS vocal channel 02 = song
        "01-01-01-01-01-01-01.flac",  # modality 01 = audio-video
        "02-01-03-01-01-01-01.flac",  # modality 02 = video-only
        "03-01-09-01-01-01-01.flac",  # no emotion 09
        "03-01-01-01-01-01.flac",  # too few fields
        "1001_DFA_XXX_XX.flac",  # unknown CREMA-D emotion
        "1001_DFA_ANG_ZZ.flac",  # unknown level
        "101_DFA_ANG_XX.flac",  # 3-digit actor
        "1001_DFA_ANG_XX.txt",  # not audio
        "notes.wav",
        "OAF_back_angry.wav",  # TESS: not registered (yet)
    ],
)
def test_reject_unknown_or_non_speech(name):
    assert corp.parse_path(Path(name)) is None


def test_registry_parsers_are_documented():
    for c in corp.CORPORA.values():
        assert c.parse.__doc__ and c.licence and c.credit


def test_default_label_set_folds_calm():
    em = corp.resolve_emotions(None)
    assert em == ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    assert corp.map_label("calm", em) == "neutral"
    assert corp.map_label("neutral", em) == "neutral"
    assert corp.map_label("surprised", em) == "surprised"


def test_four_class_set_keeps_calm_and_skips_others():
    em = corp.resolve_emotions("calm,happy,fearful,disgust".split(","))
    assert em == ("calm", "happy", "fearful", "disgust")
    assert corp.map_label("calm", em) == "calm"
    assert corp.map_label("neutral", em) is None
    assert corp.map_label("angry", em) is None


def test_all_eight_and_case_insensitive():
    em = corp.resolve_emotions([e.upper() for e in reversed(corp.EMOTIONS)])
    assert em == corp.EMOTIONS
    assert corp.map_label("calm", em) == "calm"
    assert corp.map_label("neutral", em) == "neutral"


def test_calm_skipped_when_neither_calm_nor_neutral_requested():
    em = corp.resolve_emotions(["happy", "sad"])
    assert corp.map_label("calm", em) is None


@pytest.mark.parametrize("bad", [["happy", "joy"], ["happy"], ["", " "]])
def test_bad_emotion_sets(bad):
    with pytest.raises(corp.LabelError):
        corp.resolve_emotions(bad)


def test_discover_counts_unknown_and_skipped(tmp_path):
    names = [
        "03-01-01-01-01-01-01.wav", "03-01-02-01-01-01-01.wav", "03-01-05-01-01-01-02.wav",
        "03-02-05-01-01-01-02.wav",  # song -> unknown
        "1001_DFA_ANG_XX.wav", "1001_DFA_HAP_XX.wav",
        "readme.wav", "readme.txt",  # unknown audio, and a non-audio file that isn't counted
    ]
    for n in names:
        sub = tmp_path / "a" / "b" if n.startswith("10") else tmp_path
        sub.mkdir(parents=True, exist_ok=True)
        (sub / n).write_bytes(b"")
    d = corp.discover([tmp_path], corp.resolve_emotions("calm,happy,angry".split(",")))
    assert sorted((c.speaker, c.label) for c in d.clips) == [
        ("crema-d:1001", "angry"), ("crema-d:1001", "happy"), ("ravdess:01", "calm"), ("ravdess:02", "angry"),
    ]
    assert d.unknown_names == 2
    assert d.skipped_labels == {"neutral": 1}
    d = corp.discover([tmp_path], corp.resolve_emotions(None))
    assert sorted(c.label for c in d.clips if c.corpus == "ravdess") == ["angry", "neutral", "neutral"]


def test_licence_text():
    assert corp.licence_text(["ravdess", "crema-d"]) == (
        "CC BY-NC-SA 4.0 (non-commercial) because trained on RAVDESS; CREMA-D under ODbL"
    )
    assert "non-commercial" not in corp.licence_text(["crema-d"])


def test_discover_real_corpora():
    d = data_dir()
    found = corp.discover([d / "ravdess", d / "crema-d"], corp.resolve_emotions(None))
    by = {}
    for c in found.clips:
        by.setdefault(c.corpus, []).append(c)
    assert len(by["ravdess"]) == 1200 and len({c.speaker for c in by["ravdess"]}) == 20
    assert len(by["crema-d"]) > 3000 and len({c.speaker for c in by["crema-d"]}) == 46
    assert {c.label for c in by["ravdess"]} == set(corp.DEFAULT_EMOTIONS)
    assert {c.label for c in by["crema-d"]} == {"neutral", "happy", "sad", "angry", "fearful", "disgust"}
    assert found.unknown_names == 0
