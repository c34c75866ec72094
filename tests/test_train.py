"""The trainer on real clips: features + cache, speaker-grouped splits, ONNX parity, determinism, the
card, and a tiny end-to-end ``ser-train`` run. Kept small (a few speakers, tiny MLPs, 2 folds)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, data_dir
from ser_live import features
from ser_live.train import corpora as corp
from ser_live.train import dataset, encoders, evaluate, export, recipe
from ser_live.train.cli import main
from ser_live.train.model import Hyperparameters, fit_model

TINY = Hyperparameters(hidden=(16,), alpha=1e-2, max_iter=60, members=1)
RAVDESS_ACTORS = ("01", "02", "03", "04")
CREMA_ACTORS = ("1001", "1003", "1005", "1007")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """~56 real clips, symlinked: 4 RAVDESS actors x 8 emotions, 4 CREMA-D actors x 6 emotions."""
    src = data_dir()
    root = tmp_path_factory.mktemp("corpora")
    (root / "ravdess").mkdir()
    (root / "crema-d").mkdir()
    for a in RAVDESS_ACTORS:
        for e in range(1, 9):
            name = f"03-01-{e:02d}-01-01-01-{a}.flac"
            (root / "ravdess" / name).symlink_to(src / "ravdess" / f"Actor_{a}" / name)
    for a in CREMA_ACTORS:
        for emo in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"):
            f = sorted((src / "crema-d").glob(f"{a}_*_{emo}_*.flac"))[0]
            (root / "crema-d" / f.name).symlink_to(f)
    (root / "crema-d" / "notes.wav").write_bytes(b"")  # unrecognised name: skipped and counted
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def feats(small_data, cache_dir):
    found = corp.discover([small_data], corp.resolve_emotions(None))
    fs = dataset.build_features(found.clips, roots=[small_data], cache_dir=cache_dir, jobs=1)
    assert not fs.failed
    return fs


def _labels(fs) -> np.ndarray:
    return np.array([c.label for c in fs.clips])


# ------------------------------------------------------------------------------------ data


def test_load_audio_any_rate_and_channels(tmp_path):
    src = data_dir() / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac"
    mono, rate = sf.read(src, dtype="float32")
    assert rate == 16000
    import soxr

    hi = soxr.resample(mono, 16000, 44100)
    stereo = np.stack([hi, 0.5 * hi], axis=1)
    sf.write(tmp_path / "x.wav", stereo, 44100, subtype="FLOAT")
    back = dataset.load_audio(tmp_path / "x.wav")
    assert back.dtype == np.float32 and back.ndim == 1
    assert abs(back.size - mono.size) <= 2
    n = min(back.size, mono.size)
    assert np.corrcoef(back[:n], mono[:n])[0, 1] > 0.99
    assert np.isclose(np.std(back[:n]), 0.75 * np.std(mono[:n]), rtol=0.02)


def test_features_and_cache(feats, small_data, cache_dir):
    assert feats.X.shape == (56, features.FEATURE_SIZE) and feats.X.dtype == np.float32
    assert np.all(np.isfinite(feats.X))
    assert list(cache_dir.glob("*.npz"))
    found = corp.discover([small_data], corp.resolve_emotions(None))
    again = dataset.build_features(found.clips, roots=[small_data], cache_dir=cache_dir, jobs=1)
    assert again.cached == len(found.clips)
    np.testing.assert_array_equal(again.X, feats.X)
    for f in cache_dir.glob("*.npz"):
        with np.load(f, allow_pickle=False) as z:  # no pickled objects in the cache
            assert z["features"].shape[1] == features.FEATURE_SIZE


def test_cache_survives_a_copy_of_the_corpus_but_not_a_changed_clip(tmp_path, monkeypatch):
    """A corpus copied anew (same bytes, new mtimes) is served from the cache, which then takes the new mtimes;
    a clip whose bytes changed, at the same size, is computed again."""
    root = tmp_path / "ravdess"
    root.mkdir()
    for e in range(1, 5):
        name = f"03-01-{e:02d}-01-01-01-01.flac"
        audio, rate = sf.read(data_dir() / "ravdess" / "Actor_01" / name, dtype="int16")
        sf.write(root / name.replace(".flac", ".wav"), audio, rate, subtype="PCM_16")  # WAV: same size if changed
    cache = tmp_path / "cache"

    def build():
        clips = corp.discover([root], corp.resolve_emotions(None)).clips
        return dataset.build_features(clips, roots=[root], cache_dir=cache, jobs=1)

    first = build()
    assert first.cached == 0 and len(first.clips) == 4
    for f in root.iterdir():  # as cp without -p would leave them
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    again = build()
    assert again.cached == 4
    np.testing.assert_array_equal(again.X, first.X)
    with monkeypatch.context() as m:  # the cache now holds the new mtimes: found without reading the files
        m.setattr(dataset, "_digest", lambda path: pytest.fail(f"{path} was read to find it in the cache"))
        assert build().cached == 4
    changed = sorted(root.iterdir())[2]
    audio, rate = sf.read(changed, dtype="int16")
    sf.write(changed, -audio, rate, subtype="PCM_16")  # the same size, other bytes
    third = build()
    assert third.cached == 3
    np.testing.assert_array_equal(np.delete(third.X, 2, axis=0), np.delete(first.X, 2, axis=0))


def test_cache_follows_a_corpus_moved_elsewhere(tmp_path, monkeypatch):
    """Entries are named by their path within the corpus: the corpus moved (or mounted at another path) is served
    from the same cache file."""
    def copy_corpus(root):
        (root / "Actor_01").mkdir(parents=True)
        for e in range(1, 4):
            shutil.copy2(data_dir() / "ravdess" / "Actor_01" / f"03-01-{e:02d}-01-01-01-01.flac", root / "Actor_01")

    def build(root, rank=None):
        clips = corp.discover([root], corp.resolve_emotions(None)).clips
        return dataset.build_features(clips, roots=[root], cache_dir=cache, jobs=1, rank=rank)

    cache = tmp_path / "cache"
    here, there = tmp_path / "a" / "ravdess", tmp_path / "b" / "ravdess"
    copy_corpus(here)
    ranks = np.array([2, 0, 1])  # one speaker's clips heard in this order
    first, first_ranked = build(here), build(here, ranks)
    assert first.cached == first_ranked.cached == 0
    here.parent.rename(tmp_path / "b")  # moved, mtimes kept
    with monkeypatch.context() as m:
        m.setattr(dataset, "_unit_features", lambda *a: pytest.fail("a moved clip was computed again"))
        moved, moved_ranked = build(there), build(there, ranks)
    assert moved.cached == moved_ranked.cached == 3 and len(list(cache.glob("*.npz"))) == 2
    np.testing.assert_array_equal(moved.X, first.X)
    np.testing.assert_array_equal(moved_ranked.X, first_ranked.X)


def test_cache_key_follows_what_the_features_compute(monkeypatch):
    from ser_live import features as F

    speech = [dataset.load_audio(p) for p in sorted((data_dir() / "ravdess" / "Actor_01").glob("*.flac"))[:2]]
    before = dataset._behaviour_sha256(speech)
    assert dataset._behaviour_sha256(speech) == before  # deterministic
    monkeypatch.setattr(F, "_VOICING_THRESHOLD", F._VOICING_THRESHOLD * 1.1)  # a change without a version bump
    assert dataset._behaviour_sha256(speech) != before


def test_cache_key_follows_where_the_segmenter_cuts(monkeypatch):
    from ser_live import segmenter

    speech = [dataset.load_audio(p) for p in sorted((data_dir() / "ravdess" / "Actor_01").glob("*.flac"))[:2]]
    config = dataset.segmenter_config()
    before = dataset._cut_sha256(speech, config)
    assert dataset._cut_sha256(speech, config) == before  # deterministic
    levels = segmenter.speech_levels
    monkeypatch.setattr(segmenter, "speech_levels", lambda a: (levels(a)[0] - 3.0, levels(a)[1]))  # same config
    assert dataset._cut_sha256(speech, config) != before
    # how a noisy background sets the gain (studio clips' quiet backgrounds never reach the limit)
    monkeypatch.setattr(segmenter, "speech_levels", lambda a: (levels(a)[0], levels(a)[1] + 6.0 * (levels(a)[1] > -50.0)))
    assert dataset._cut_sha256(speech, config) != before


# ------------------------------------------------------------------------------------ evaluation


@pytest.mark.parametrize("folds, seed", [(5, 0), (2, 1), (4, 7)])
def test_grouped_splits_never_share_a_speaker(folds, seed):
    d = data_dir()
    found = corp.discover([d / "ravdess", d / "crema-d"], corp.resolve_emotions(None))
    y = np.array([c.label for c in found.clips])
    g = np.array([c.speaker for c in found.clips])
    tested = []
    for tr, te in evaluate.grouped_splits(y, g, folds, seed):
        assert not set(g[tr]) & set(g[te])
        assert len(tr) + len(te) == len(y)
        tested += sorted(set(g[te]))
    assert sorted(tested) == sorted(set(g))  # every speaker tested exactly once


def test_sentence_of_a_clip_from_its_file_name():
    d = data_dir()
    found = corp.discover([d / "ravdess", d / "crema-d"], corp.resolve_emotions(None))
    by_corpus = {}
    for c in found.clips:
        by_corpus.setdefault(c.corpus, set()).add(corp.sentence(c))
    assert by_corpus["ravdess"] == {"01", "02"}
    assert len(by_corpus["crema-d"]) == 12 and "DFA" in by_corpus["crema-d"]
    other = corp.Clip(Path("x/anything.wav"), "tess", "tess:a", "sad")
    assert corp.sentence(other) is None


def test_new_text_cv_never_trains_on_the_held_out_sentence():
    """Labels that only the sentence tells: ordinary speaker-grouped CV learns them from other speakers;
    the new-text CV, whose models never hear the held-out clip's sentence, cannot."""
    rng = np.random.default_rng(0)
    speakers, sentences, reps = [f"s{i}" for i in range(10)], [f"T{j}" for j in range(6)], 4
    rows = [(s, t) for s in speakers for t in sentences for _ in range(reps)]
    g = np.array([s for s, _ in rows])
    sent = [t for _, t in rows]
    y = np.array(["a" if int(t[1]) < 3 else "b" for t in sent])  # each group of 3 sentences holds both labels
    X = (np.eye(6)[[int(t[1]) for t in sent]] + rng.normal(0, 0.05, (len(rows), 6))).astype(np.float32)
    corpora = np.full(len(rows), "c")
    hp = Hyperparameters(hidden=(16,), alpha=1e-3, learning_rate_init=1e-2, max_iter=500, early_stopping=False, members=1)
    ordinary = np.empty(len(y), object)
    for tr, te in evaluate.grouped_splits(y, g, 5, 0):
        ordinary[te] = fit_model(X[tr], y[tr], hp, 0).predict(X[te])
    new = evaluate.new_text_predictions(X, y, g, corpora, sent, hp, folds=5, seed=0)
    assert all(p is not None for p in new)
    uar = lambda p: evaluate.metrics(y, p.astype(str), ["a", "b"])["uar"]  # noqa: E731
    assert uar(ordinary) > 0.95
    assert uar(new) < 0.75


def test_too_few_speakers_for_folds():
    y = np.array(["a", "b", "a", "b"])
    g = np.array(["s1", "s1", "s2", "s2"])
    with pytest.raises(evaluate.EvaluationError):
        evaluate.grouped_splits(y, g, 3, 0)


def test_metrics_restricted_to_corpus_labels():
    m = evaluate.metrics(["a", "a", "b", "b"], ["a", "c", "b", "b"], ["a", "b"])
    assert m["accuracy"] == 0.75
    assert m["uar"] == pytest.approx(0.75)  # recall a 0.5, b 1.0; "c" isn't scored as a class
    assert m["labels"] == ["a", "b"] and m["predicted_labels"] == ["a", "b", "c"]
    assert m["confusion"] == [[1, 0, 1], [0, 2, 0]]


# ------------------------------------------------------------------------------------ export


def test_onnx_parity_on_real_features(feats):
    import onnxruntime as ort

    model = fit_model(feats.X, _labels(feats), TINY, seed=0)
    blob = export.to_onnx_bytes(model, features.FEATURE_SIZE)
    assert export.parity(model, blob, feats.X) < export.PARITY_TOL
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [export.INPUT_NAME]
    (proba,) = sess.run([export.PROBA_NAME], {export.INPUT_NAME: feats.X[:3]})
    assert proba.shape == (3, len(model.classes_)) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("hidden", [(16,), (12, 8)])
def test_members_merged_into_one_mlp_average_their_logits(feats, hidden):
    from dataclasses import replace

    from scipy.special import log_softmax, softmax

    y = _labels(feats)
    hp = replace(TINY, hidden=hidden, members=3)
    merged = fit_model(feats.X, y, hp, seed=5)
    singles = [fit_model(feats.X, y, replace(hp, members=1), seed=5 + k) for k in range(3)]
    assert merged.named_steps["mlp"].hidden_layer_sizes == tuple(3 * h for h in hidden)
    # softmax of the mean logits == softmax of the mean log-probabilities (per-row constants cancel)
    mean_logp = np.mean([log_softmax(np.log(m.predict_proba(feats.X)), axis=1) for m in singles], axis=0)
    np.testing.assert_allclose(merged.predict_proba(feats.X), softmax(mean_logp, axis=1), atol=1e-5)
    assert not np.allclose(singles[0].predict_proba(feats.X), singles[1].predict_proba(feats.X), atol=1e-3)
    assert export.parity(merged, export.to_onnx_bytes(merged, features.FEATURE_SIZE), feats.X) < export.PARITY_TOL


def test_same_seed_same_onnx_bytes(feats):
    y = _labels(feats)
    a = export.to_onnx_bytes(fit_model(feats.X, y, TINY, seed=3), features.FEATURE_SIZE)
    b = export.to_onnx_bytes(fit_model(feats.X, y, TINY, seed=3), features.FEATURE_SIZE)
    c = export.to_onnx_bytes(fit_model(feats.X, y, TINY, seed=4), features.FEATURE_SIZE)
    assert a == b
    assert a != c


# ------------------------------------------------------------------------------------ end to end


def test_ser_train_end_to_end(small_data, cache_dir, tmp_path, capsys):
    import onnxruntime as ort

    out = tmp_path / "tiny.onnx"
    rc = main([
        "--data", str(small_data / "ravdess"), str(small_data / "crema-d"), "--out", str(out),
        "--folds", "2", "--jobs", "1", "--hidden", "16", "--max-iter", "60", "--cache-dir", str(cache_dir),
        "--encoder", "none", "--speaker-norm", "causal",
    ])
    assert rc == 0, capsys.readouterr().err
    for suffix in (".json", ".metrics.json", ".report.md", ".confusion.png"):
        assert (tmp_path / f"tiny{suffix}").is_file(), suffix
    assert (tmp_path / "tiny.confusion.png").read_bytes()[:4] == b"\x89PNG"

    card = json.loads((tmp_path / "tiny.json").read_text())
    assert card["format"] == "ser-live-model" and card["format_version"] == 1
    assert card["labels"] == ["angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
    assert card["feature_version"] == features.FEATURE_VERSION
    assert card["feature_size"] == features.FEATURE_SIZE
    assert card["sample_rate"] == 16000
    assert card["segmenter"] == dataset.config_dict(dataset.segmenter_config())
    assert "non-commercial" in card["licence"] and "RAVDESS" in card["licence"]
    assert any("Livingstone" in c for c in card["credits"]) and any("CREMA-D" in c for c in card["credits"])
    assert card["corpora"]["ravdess"]["speakers"] == [f"ravdess:{a}" for a in RAVDESS_ACTORS]
    assert card["corpora"]["crema-d"]["clips"] == 24
    assert card["training"]["seed"] == 0 and card["training"]["folds"] == 2
    assert card["training"]["skipped"]["unknown_names"] == 1
    assert set(card["library_versions"]) >= {"numpy", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "python"}
    cv = card["metrics"]["cross_validation"]
    assert set(cv["per_corpus"]) == {"ravdess", "crema-d"}
    assert cv["per_corpus"]["crema-d"]["labels"] == ["angry", "disgust", "fearful", "happy", "neutral", "sad"]
    assert set(card["metrics"]["cross_corpus"]) == {"ravdess->crema-d", "crema-d->ravdess"}
    metrics = json.loads((tmp_path / "tiny.metrics.json").read_text())
    assert metrics == card["metrics"]

    # causal speaker normalisation by default; its mean is that of the training rows (clean + augmented)
    from ser_live.train import augment

    # (clean clips cut as one source per speaker in the seeded arrival order; augmented clips each alone)
    found = corp.discover([small_data], corp.resolve_emotions(None))
    rank = evaluate.arrival_rank(np.array([c.speaker for c in found.clips]), 0)
    X = dataset.build_features(found.clips, roots=[small_data], cache_dir=cache_dir, jobs=1, rank=rank).X
    (copy,) = augment.training_copies(1)
    Xa = dataset.build_features(found.clips, roots=[small_data], cache_dir=cache_dir, jobs=1, corruption=copy).X
    sn = card["speaker_norm"]
    assert sn["method"] == "causal_running_mean" and sn["prior_clips"] == 3
    np.testing.assert_allclose(sn["mean"], np.concatenate([X, Xa]).astype(np.float64).mean(axis=0), rtol=1e-9)
    assert card["training"]["speaker_norm"]["method"] == "causal_running_mean"

    # the ONNX output columns follow the card's labels
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    label, proba = sess.run(["label", card["output_name"]], {card["input_name"]: X})
    assert proba.shape == (len(X), len(card["labels"]))
    assert list(label) == [card["labels"][i] for i in proba.argmax(axis=1)]

    # and the runtime's own loader accepts model + card
    from ser_live.model import EmotionModel

    m = EmotionModel(out)
    assert m.labels == card["labels"]
    np.testing.assert_array_equal(m.speaker_norm.mean, sn["mean"])


def test_an_unreadable_clip_leaves_the_cut_and_the_normaliser_in_one_order(small_data, tmp_path, monkeypatch):
    """ser-train cuts each speaker's clips as one session and normalises them in the same arrival order;
    a clip that cannot be read is skipped without reordering the speaker's other clips for either (and
    without breaking the cache key, whose probes are the first clips by name: this one sorts first)."""
    root = tmp_path / "data"
    shutil.copytree(small_data / "ravdess", root / "ravdess")  # copies, not links: the corpus stays untouched
    bad = "03-01-01-01-01-01-01.flac"
    (root / "ravdess" / bad).write_bytes(b"not audio")
    seen = {}
    build = dataset.build_features

    def spy_build(clips, **kw):
        fs = build(clips, **kw)
        if kw.get("rank") is not None:
            seen["cut"] = {str(c.path): int(r) for c, r in zip(clips, kw["rank"])}
        return fs

    class SpyNorm(evaluate.SessionNorm):
        def __init__(self, prior, groups, rank, **kw):
            super().__init__(prior, groups, rank, **kw)
            seen["norm"] = (list(groups), list(rank))

    monkeypatch.setattr(dataset, "build_features", spy_build)
    monkeypatch.setattr(evaluate, "SessionNorm", SpyNorm)
    rc = main(["--data", str(root / "ravdess"), "--out", str(tmp_path / "m.onnx"), "--no-eval", "--augment", "0",
               "--jobs", "1", "--hidden", "8", "--max-iter", "20", "--cache-dir", str(tmp_path / "c"),
               "--encoder", "none", "--speaker-norm", "causal"])
    assert rc == 0
    found = corp.discover([root / "ravdess"], corp.resolve_emotions(None))
    kept = [c for c in found.clips if c.path.name != bad]
    groups, rank = seen["norm"]
    assert groups == [c.speaker for c in kept] and len(kept) == len(found.clips) - 1
    for speaker in set(groups):
        mine = [c for c, g in zip(kept, groups) if g == speaker]
        by_norm = [c.path for _, c in sorted(zip([r for r, g in zip(rank, groups) if g == speaker], mine))]
        by_cut = sorted((c.path for c in mine), key=lambda p: seen["cut"][str(p)])
        assert by_norm == by_cut, speaker


def test_ser_train_four_classes_no_eval(small_data, cache_dir, tmp_path):
    out = tmp_path / "four.onnx"
    rc = main([
        "--data", str(small_data), "--out", str(out), "--emotions", "calm,happy,fearful,disgust",
        "--no-eval", "--jobs", "1", "--hidden", "8", "--max-iter", "30", "--cache-dir", str(cache_dir),
        "--speaker-norm", "none", "--encoder", "none",
    ])
    assert rc == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert "speaker_norm" not in card and card["training"]["speaker_norm"] == {"method": "none"}
    assert card["labels"] == ["calm", "disgust", "fearful", "happy"]
    assert card["metrics"] == {}
    assert card["corpora"]["ravdess"]["labels"]["calm"] == 4  # calm kept, not folded
    assert card["training"]["skipped"]["label_not_in_set"] == 4 * 4 + 4 * 3
    assert not out.with_suffix(".metrics.json").exists()


@pytest.mark.parametrize(
    "case",
    ["missing_data", "unknown_emotion", "missing_out_dir", "no_clips", "negative_prior"],
)
def test_bad_input_one_line_exit_2(case, small_data, tmp_path, capsys):
    args = {
        "missing_data": ["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m.onnx")],
        "unknown_emotion": ["--data", str(small_data), "--out", str(tmp_path / "m.onnx"), "--emotions", "happy,joy"],
        "missing_out_dir": ["--data", str(small_data), "--out", str(tmp_path / "no" / "m.onnx")],
        "no_clips": ["--data", str(tmp_path), "--out", str(tmp_path / "m.onnx")],
        "negative_prior": ["--data", str(small_data), "--out", str(tmp_path / "m.onnx"), "--norm-prior", "-1"],
    }[case]
    assert main(args + ["--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ser-train: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("module, args", [
    ("ser_live.train.cli", ["--folds", "x"]),
    ("ser_live.train.cli", ["--folds", "0"]),
    ("ser_live.train.cli", ["--out", "m.onnx"]),  # --data missing
    ("ser_live.train.evaluate_cli", ["--data", "d", "--folds", "two"]),
    ("ser_live.train.evaluate_cli", ["--data", "d", "--head-seeds", "0"]),
    ("ser_live.train.evaluate_cli", ["--data", "d", "--folds", "1"]),
])
def test_argument_errors_are_one_line(module, args, capsys):
    import importlib

    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "usage:" not in err, err
    assert err.startswith(("ser-train: ", "ser-evaluate: ")) and "--help" in err


def test_console_script_error_has_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("ser-train")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ser_live.train.cli"]
    r = subprocess.run(cmd + ["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "m.onnx")],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "100"})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert "data folder not found" in r.stderr


# ------------------------------------------------------------------------------------ augmentation


def _clip_audio(name="03-01-05-01-01-01-01.flac") -> np.ndarray:
    return dataset.load_audio(data_dir() / "ravdess" / "Actor_01" / name)


def test_corruption_is_deterministic_per_clip():
    from ser_live.train import augment

    audio = _clip_audio()
    c = augment.Corruption(name="t", noises=("white", "pink"), snr_db=(5.0, 30.0), gain_db=(-10.0, 10.0),
                           floor_dbfs=(-60.0, -50.0), telephone_p=0.5, seed=3)
    a = c.apply(audio, "clip-a.flac")
    np.testing.assert_array_equal(a, c.apply(audio.copy(), "clip-a.flac"))
    assert not np.array_equal(a, c.apply(audio, "clip-b.flac"))  # another clip, other draws
    assert not np.array_equal(a, augment.Corruption(**{**c.to_dict(), "copy": 1}).apply(audio, "clip-a.flac"))
    assert a.dtype == np.float32 and a.shape == audio.shape and np.isfinite(a).all()
    json.dumps(c.to_dict())  # goes into the cache key and the card


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
def test_noise_at_requested_snr_of_active_speech(kind):
    from ser_live.train import augment

    audio = _clip_audio()
    pool = [str(p) for p in sorted((data_dir() / "ravdess" / "Actor_02").glob("*.flac"))[:8]]
    c = augment.Corruption(name="t", noises=(kind,), snr_db=(12.0, 12.0), seed=1)
    noisy = c.apply(audio, "x.flac", pool, dataset.load_audio)
    noise = noisy.astype(np.float64) - audio
    snr = 10 * np.log10(augment.active_level(audio) / np.mean(noise**2))
    assert snr == pytest.approx(12.0, abs=0.5)
    if kind == "pink":  # more power below 1 kHz than above 4 kHz
        spec = np.abs(np.fft.rfft(noise)) ** 2
        f = np.fft.rfftfreq(noise.size, 1 / 16000)
        assert spec[(f > 100) & (f < 1000)].mean() > 10 * spec[f > 4000].mean()
    if kind == "babble":
        with pytest.raises(ValueError):
            c.apply(audio, "x.flac")  # babble needs other speakers


def test_telephone_band_removes_low_and_high():
    from ser_live.train import augment

    t = np.arange(16000) / 16000
    tones = {f: np.sin(2 * np.pi * f * t) for f in (100.0, 1000.0, 6000.0)}
    gain = {f: np.std(augment.telephone(x)[4000:]) / np.std(x) for f, x in tones.items()}
    assert gain[1000.0] > 0.9 and gain[100.0] < 0.1 and gain[6000.0] < 0.05


@pytest.mark.parametrize("rt60, drr", [(0.3, 10.0), (0.8, 0.0)])
def test_room_response_decays_in_rt60_with_the_requested_direct_to_reverberant_ratio(rt60, drr):
    from ser_live.train import augment

    h = augment.room_response(np.random.default_rng(5), rt60, drr)
    assert h[0] == 1.0 and h.size == int(rt60 * 16000)
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=1e-6)
    decay = np.cumsum((h[1:] ** 2)[::-1])[::-1]  # Schroeder's backward integral of the tail
    edc = 10 * np.log10(decay / decay[0])
    assert 2 * np.argmax(edc < -30) / 16000 == pytest.approx(rt60, rel=0.1)  # RT60 from the first 30 dB


def test_a_room_fills_the_pause_after_speech_and_only_when_asked():
    from ser_live.train import augment

    audio = _clip_audio()
    dry = augment.Corruption(name="t", noises=("white",), snr_db=(30.0, 30.0), seed=2)
    roomy = augment.Corruption(**{**dry.to_dict(), "reverb_p": 1.0, "rt60_s": (0.7, 0.7), "drr_db": (0.0, 0.0)})
    # without a room the draws, the output and the cache key are those of a corruption that has no room fields
    assert "reverb_p" not in dry.to_dict() and roomy.to_dict()["reverb_p"] == 1.0
    np.testing.assert_array_equal(dry.apply(audio, "x.flac"),
                                  augment.Corruption(**{**dry.to_dict(), "rt60_s": (0.2, 0.2)}).apply(audio, "x.flac"))
    out = roomy.apply(audio, "x.flac")  # the tail rings on past the clip's end: 0.7 s more audio
    assert out.size == audio.size + int(0.7 * 16000) - 1 and np.isfinite(out).all()
    end = np.flatnonzero(np.abs(audio) > 0.05 * np.abs(audio).max())[-1]  # the last loud sample
    after = slice(end + 800, end + 3200)  # 50-200 ms after it
    power = lambda x: np.mean(x[after].astype(np.float64) ** 2)  # noqa: E731
    assert power(out) > 10 * power(dry.apply(audio, "x.flac"))


def test_a_speed_change_raises_pitch_and_shortens_the_clip_and_only_when_asked():
    from ser_live.features import _pitch_track
    from ser_live.train import augment

    audio = _clip_audio()
    plain = augment.Corruption(name="t", gain_db=(-5.0, 5.0), seed=4)
    fast = augment.Corruption(**{**plain.to_dict(), "speed_p": 1.0, "speed": (1.1, 1.1)})
    # without a speed change the draws, the output and the cache key are those of a corruption without its fields
    assert "speed_p" not in plain.to_dict() and fast.to_dict()["speed"] == (1.1, 1.1)
    np.testing.assert_array_equal(plain.apply(audio, "x.flac"),
                                  augment.Corruption(**{**plain.to_dict(), "speed": (0.5, 0.5)}).apply(audio, "x.flac"))
    out = fast.apply(audio, "x.flac")
    assert out.size == pytest.approx(audio.size / 1.1, abs=2) and np.isfinite(out).all()

    def median_f0(x):
        f0, peak, e_db = _pitch_track(x.astype(np.float64))
        return np.median(f0[peak >= 0.6])

    assert 12 * np.log2(median_f0(out) / median_f0(audio)) == pytest.approx(12 * np.log2(1.1), abs=0.4)


def test_the_opus_codec_keeps_length_and_level_and_loses_detail_with_the_bitrate():
    from ser_live.train import augment

    audio = _clip_audio()
    plain = augment.Corruption(name="t", noises=("white",), snr_db=(30.0, 30.0), seed=6)
    coded = augment.Corruption(**{**plain.to_dict(), "codec_p": 1.0, "opus_level": (0.95, 0.95)})
    assert "codec_p" not in plain.to_dict() and coded.to_dict()["opus_level"] == (0.95, 0.95)
    before = plain.apply(audio, "x.flac")
    after = coded.apply(audio, "x.flac")  # the codec comes last: the same noisy clip, then encoded
    np.testing.assert_array_equal(after, coded.apply(audio, "x.flac"))
    assert after.shape == before.shape and np.isfinite(after).all()
    level = lambda x: 10 * np.log10(augment.active_level(x))  # noqa: E731
    assert level(after) == pytest.approx(level(before), abs=1.0)
    snr = lambda y: 10 * np.log10(np.sum(before.astype(np.float64) ** 2) / np.sum((y - before.astype(np.float64)) ** 2))  # noqa: E731
    assert snr(augment.opus(before, 0.5)) > 25.0 > snr(after) > 5.0  # aligned (no delay), coarser at ~20 kbps


def test_augmented_features_cached_apart(feats, small_data, cache_dir):
    from ser_live.train import augment

    found = corp.discover([small_data], corp.resolve_emotions(None))
    (copy,) = augment.training_copies(1)
    aug = dataset.build_features(found.clips, roots=[small_data], cache_dir=cache_dir, jobs=1, corruption=copy)
    assert aug.X.shape == feats.X.shape and not aug.failed
    assert not np.allclose(aug.X, feats.X)
    assert list(cache_dir.glob(f"*-{copy.name}0-*.npz"))
    again = dataset.build_features(found.clips, roots=[small_data], cache_dir=cache_dir, jobs=1, corruption=copy)
    assert again.cached == len(found.clips)
    np.testing.assert_array_equal(again.X, aug.X)
    clean = dataset.build_features(found.clips, roots=[small_data], cache_dir=cache_dir, jobs=1)
    np.testing.assert_array_equal(clean.X, feats.X)  # the clean cache is untouched


def test_a_speakers_clips_cut_as_one_source_keep_their_cut_when_quieter(feats, small_data, cache_dir):
    """With an arrival order each speaker's clips are cut as one microphone session (the VAD gain follows
    the clips before): 20 dB quieter, the later clips give nearly the features of the normal-level ones;
    each clip heard alone, more of them change. A speaker's first clip is heard alone either way, and the
    gain moves from the second utterance on."""
    from ser_live.train import augment

    found = corp.discover([small_data], corp.resolve_emotions(None))
    groups = np.array([c.speaker for c in found.clips])
    rank = evaluate.arrival_rank(groups, 0)
    quiet = augment.test_conditions()["gain -20 dB"]

    def build(**kw):
        return dataset.build_features(found.clips, roots=[small_data], cache_dir=cache_dir, jobs=1, **kw)

    sess, sess_quiet = build(rank=rank), build(rank=rank, corruption=quiet)
    alone_quiet = build(corruption=quiet)
    first = rank == 0
    np.testing.assert_array_equal(sess.X[first], feats.X[first])
    assert build(rank=rank).cached == len(found.clips)  # cached under their own key
    assert build(rank=evaluate.arrival_rank(groups, 1)).cached == 0  # another order is another cut
    scale = feats.X.std(axis=0) + 1e-6

    def moved(a, b):
        return np.mean(np.abs(a - b)[rank >= 2] / scale, axis=1)

    # the mean, not the median: since feature version 5 leaves out quiet edges, most clips' vectors do not
    # move at all at -20 dB even when heard alone (a third of them do, against all of them before)
    assert np.mean(moved(sess_quiet.X, sess.X)) < 0.5 * np.mean(moved(alone_quiet.X, feats.X))


def test_training_rows_and_ece():
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.array(list("abcabc"))
    Xt, yt = evaluate.training_rows(X, y, np.array([0, 2]), [X + 100])
    np.testing.assert_array_equal(Xt, [[0, 1], [4, 5], [100, 101], [104, 105]])
    assert list(yt) == ["a", "c", "a", "c"]
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    assert evaluate.expected_calibration_error(proba, np.array([0, 0, 0, 1])) == pytest.approx(0.1 * 0.5 + 0.1 * 0.5)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert evaluate.expected_calibration_error(perfect, np.array([0, 1])) == 0.0


def test_the_fold_runner_fits_each_fold_on_its_training_rows_and_scores_its_held_out_rows(feats):
    """fit_folds, the one fold loop of CV, cross-corpus and the experiments: each model is fitted on its
    fold's training rows (clean and augmented, normalised with a mean of those rows) and sees its
    held-out rows normalised with that mean, in fold order, with the hyperparameters ``choose`` gives."""
    y = _labels(feats)
    groups = np.array([c.speaker for c in feats.clips])
    sn = evaluate.SessionNorm(3.0, groups, evaluate.arrival_rank(groups, 0))
    aug = [feats.X * np.float32(0.5)]
    splits = evaluate.grouped_splits(y, groups, 2, seed=0)
    asked = []

    def choose(rows):
        asked.append(rows)
        return TINY

    fitted = list(evaluate.fit_folds(feats.X, y, splits, Hyperparameters(), 0, augmented=aug, sn=sn, choose=choose))
    assert len(fitted) == len(splits) and all(a is tr for a, (tr, _) in zip(asked, splits))
    for fold, (tr, te) in zip(fitted, splits):
        assert fold.train is tr and fold.test is te
        Xt, yt, norm = evaluate.fold_rows(feats.X, y, tr, aug, sn)
        np.testing.assert_array_equal(fold.norm.mean, norm.mean)
        by_hand = fit_model(Xt, yt, TINY, 0)
        held = evaluate.held_out_rows(feats.X, te, sn, norm)
        np.testing.assert_array_equal(fold.rows(feats.X), held)
        np.testing.assert_array_equal(fold.model.predict_proba(held), by_hand.predict_proba(held))
        np.testing.assert_array_equal(fold.predict(feats.X), by_hand.predict(held))
        np.testing.assert_array_equal(fold.predict(feats.X, tr[:3]),
                                      by_hand.predict(evaluate.held_out_rows(feats.X, tr[:3], sn, norm)))


def test_stream_vs_clip_runs_the_live_path(feats):
    from ser_live.train import evaluate_cli

    y = _labels(feats)
    model = fit_model(feats.X, y, TINY, seed=0)
    picks = [feats.clips[i] for i in (0, 9, 30, 45)]
    everyone = np.arange(len(y))
    fold = evaluate.FoldModel(model, everyone, everyone, None, None)
    pred, stats = evaluate_cli._stream_predictions(fold, [picks], -60.0, seed=0)
    assert len(pred) == 4 and stats["missed"] == 0 and stats["utterances"] >= 4
    assert set(pred) <= set(model.classes_)
    # the stream's labels are (mostly) those the same model gives the clips one by one
    X = np.stack([feats.X[i] for i in (0, 9, 30, 45)])
    assert np.mean(np.array(pred) == model.predict(X)) >= 0.5


def test_stream_vs_clip_streams_every_held_out_clip_of_every_fold_and_scores_each_corpus(feats):
    from types import SimpleNamespace

    from ser_live.train import evaluate_cli

    y = _labels(feats)
    groups = np.array([c.speaker for c in feats.clips])
    corpus = np.array([c.corpus for c in feats.clips])
    rank = evaluate.arrival_rank(groups, 0)
    folds = list(evaluate.fit_folds(feats.X, y, evaluate.grouped_splits(y, groups, 2, seed=0), TINY, 0))
    args = SimpleNamespace(seed=0, stream_clips=0, stream_floor=-60.0, extractor=None)
    r = evaluate_cli._stream_vs_clips(folds, feats.clips, feats.X, feats.X, y, corpus, groups, rank, args)
    assert r["folds"] == 2 and r["clips"] == len(y) and r["sources"] == len(set(groups))
    assert set(r["per_corpus"]) == {"ravdess", "crema-d"}
    assert sum(v["clips"] for v in r["per_corpus"].values()) == len(y)
    for v in r["per_corpus"].values():
        assert v["gap"] == pytest.approx(v["uar_clips"] - v["uar_stream"])
        assert v["uar_clips"] == v["uar_clips_floor60"]  # the same rows were passed for both
    assert r["agreement_stream_vs_clips"] >= 0.5
    # a sample per fold: only that many clips are streamed
    sample = evaluate_cli._stream_vs_clips(folds, feats.clips, feats.X, feats.X, y, corpus, groups, rank,
                                           SimpleNamespace(seed=0, stream_clips=5, stream_floor=-60.0, extractor=None))
    assert sample["clips"] == 10 == sum(v["clips"] for v in sample["per_corpus"].values())


def test_temperature_scaling_inside_the_model(feats):
    from ser_live.train.model import apply_temperature

    y = _labels(feats)
    model = fit_model(feats.X, y, TINY, seed=0)
    raw = model.predict_proba(feats.X)
    apply_temperature(model, 2.0)
    np.testing.assert_allclose(model.predict_proba(feats.X), evaluate._soften(raw, 2.0), atol=1e-6)
    assert export.parity(model, export.to_onnx_bytes(model, features.FEATURE_SIZE), feats.X) < export.PARITY_TOL
    # overconfident predictions (right 60% of the time at ~0.97) call for T > 1
    rng = np.random.default_rng(0)
    y_idx = rng.integers(0, 3, 500)
    guess = np.where(rng.uniform(size=500) < 0.6, y_idx, (y_idx + 1) % 3)
    proba = np.full((500, 3), 0.015)
    proba[np.arange(500), guess] = 0.97
    t = evaluate.fit_temperature(proba, y_idx)
    assert t > 1.5
    assert evaluate.expected_calibration_error(evaluate._soften(proba, t), y_idx) < 0.5 * evaluate.expected_calibration_error(proba, y_idx)


def test_switch_sessions_put_every_speaker_second_once_after_a_whole_other_session():
    from ser_live.train import evaluate_cli

    groups = np.array(["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["x"] * 3 + ["y"] * 2)
    corpus = np.array(["R"] * 9 + ["C"] * 5)
    rank = np.array([2, 0, 3, 1, 1, 0, 2, 0, 1, 0, 1, 2, 1, 0])
    idx = np.arange(len(groups))
    pairs = evaluate_cli._switch_sessions(groups, corpus, idx, rank, seed=3)
    assert sorted(groups[second[0]] for _, second in pairs) == ["a", "b", "c", "x", "y"]
    for first, second in pairs:
        assert len(set(groups[first])) == len(set(groups[second])) == 1 and groups[first[0]] != groups[second[0]]
        assert corpus[first[0]] == corpus[second[0]]
        assert set(first) == set(np.flatnonzero(groups == groups[first[0]]))  # the whole session ...
        assert list(rank[first]) == sorted(rank[first]) and list(rank[second]) == sorted(rank[second])  # ... in arrival order


def test_evaluation_report_names_the_command_that_reproduces_it():
    from ser_live.train import evaluate_cli

    p = evaluate_cli._parser()
    plain = ["--data", "../d/ravdess", "../d/crema-d"]
    assert evaluate_cli._command(p, p.parse_args(plain + ["--jobs", "1"])) == \
        "ser-evaluate --data ../d/ravdess ../d/crema-d --out evaluation/evaluation"
    other = p.parse_args(plain + ["--seed", "1", "--out", "/tmp/seed 1", "--norm-memory", "0"])
    assert evaluate_cli._command(p, other) == \
        "ser-evaluate --data ../d/ravdess ../d/crema-d --out '/tmp/seed 1' --norm-memory 0.0 --seed 1"


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "reports").glob("evaluation*.json")))
def test_evaluation_report_renders_from_its_json_with_a_stream_row_per_corpus(name):
    """Each committed report is what ``render`` makes of the committed JSON (the figures have one source)."""
    from ser_live.train import evaluate_cli

    r = json.loads((REPO / "reports" / f"{name}.json").read_text())
    md = evaluate_cli.render(r)
    assert md == (REPO / "reports" / f"{name}.md").read_text()
    for c, v in r["stream"]["per_corpus"].items():
        assert f"| stream vs clip, {c} ({v['clips']} held-out clips of {r['stream']['folds']} folds" in md
    assert sum(v["clips"] for v in r["stream"]["per_corpus"].values()) == r["stream"]["clips"]
    assert any(line.startswith("| room RT60") and "(no target)" in line for line in md.splitlines())


def test_alpha_search_chooses_on_the_training_rows_only():
    """A nested search: the penalty that learns a separable problem wins over one that cannot learn, in
    either order, and neither the choice nor its score depends on rows outside the training set."""
    rng = np.random.default_rng(0)
    groups = np.repeat([f"s{k}" for k in range(12)], 18)
    corpora = np.array(["A" if int(g[1:]) % 2 else "B" for g in groups])
    y = np.tile(np.repeat(["x", "y", "z"], 6), 12)
    X = (np.eye(3)[np.searchsorted(["x", "y", "z"], y)] @ rng.normal(0, 3, (3, 8)) + rng.normal(0, 1, (len(y), 8))).astype(np.float32)
    rows = np.flatnonzero(~np.isin(groups, ["s0", "s1", "s2", "s3"]))
    for alphas in ([1e4, 1e-3], [1e-3, 1e4]):
        search = evaluate.AlphaSearch(X, y, groups, corpora, TINY, alphas, seed=0)
        assert search(rows).alpha == 1e-3
        assert list(search.chosen.values()) == [1e-3]
    scores = [search.score(a, rows) for a in (1e-3, 1e4)]
    assert scores[0] > 0.9 and scores[1] < scores[0] - 0.2
    other = np.setdiff1d(np.arange(len(y)), rows)
    X2, y2 = X.copy(), y.copy()
    X2[other], y2[other] = rng.normal(0, 50, (other.size, 8)), "x"  # what is held out must not matter
    assert evaluate.AlphaSearch(X2, y2, groups, corpora, TINY, [1e-3, 1e4], seed=0).score(1e-3, rows) == scores[0]


def test_ser_train_alpha_search_records_its_choices(small_data, cache_dir, tmp_path, capsys):
    out = tmp_path / "searched.onnx"
    rc = main(["--data", str(small_data / "ravdess"), str(small_data / "crema-d"), "--out", str(out), "--no-eval",
               "--augment", "0", "--jobs", "1", "--hidden", "16", "--max-iter", "60", "--members", "1",
               "--alpha", "10000,0.001", "--cache-dir", str(cache_dir), "--encoder", "none"])
    assert rc == 0, capsys.readouterr().err
    card = json.loads((tmp_path / "searched.json").read_text())
    search = card["training"]["alpha_search"]
    assert search["candidates"] == [10000.0, 0.001] and len(search["chosen"]) == 1
    assert card["training"]["hyperparameters"]["alpha"] == search["chosen"][0]
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(small_data / "ravdess"), "--out", str(out), "--alpha", "0.1,-1"])
    assert exit_.value.code != 0 and "--alpha" in capsys.readouterr().err


def test_side_by_side_puts_each_evaluation_in_its_own_column(tmp_path, capsys):
    from ser_live.train import evaluate_cli

    paths = [REPO / "reports" / "evaluation.json", REPO / "reports" / "evaluation-fast-seed1.json"]
    runs = [json.loads(p.read_text()) for p in paths]
    md = evaluate_cli.render_side_by_side(runs)
    row = next(line for line in md.splitlines() if line.startswith("| CV UAR, ravdess (7 classes) |"))
    assert row.split("|")[3:5] == [f" {100 * r['cv']['ravdess']['uar']:.1f} " for r in runs]
    assert evaluate_cli.main(["--side-by-side", *map(str, paths), "--out", str(tmp_path / "both")]) == 0
    assert (tmp_path / "both.md").read_text() == md
    centroid = json.loads((REPO / "reports" / "evaluation-default-centroid.json").read_text())
    assert "speaker adaptation centroid (shrink 10 clips), split seed 0;" in evaluate_cli.render_side_by_side([centroid])
    capsys.readouterr()
    assert evaluate_cli.main(["--side-by-side", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read an evaluation" in err


def test_ser_train_with_the_encoder_writes_a_model_the_runtime_hears_the_same_way(small_data, tmp_path, capsys):
    """The encoder recipe end to end on a few speakers: the encoder file beside the model, a card the runtime
    accepts, and the runtime's input for a clip equal to the trainer's (one definition of what the model hears)."""
    from ser_live.model import EmotionModel
    from ser_live.models import DEFAULT_MODEL

    shipped = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())["encoder"]
    cache = tmp_path / "cache"
    derived = encoders.derived_path(recipe.ENCODER, recipe.ENCODER_BLOCKS, cache)
    assert derived.name == shipped["file"]  # the shipped encoder is the recipe's, under the trainer's name for it
    derived.parent.mkdir(parents=True)  # the derived encoder, as a first run would leave it: no download here
    shutil.copy(DEFAULT_MODEL.with_name(shipped["file"]), derived)
    out = tmp_path / "enc.onnx"
    rc = main(["--data", str(small_data / "ravdess"), "--out", str(out), "--no-eval", "--augment", "0", "--jobs", "1",
               "--hidden", "8", "--max-iter", "30", "--members", "1", "--cache-dir", str(cache)])
    assert rc == 0, capsys.readouterr().err
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["input"] == "encoder" and card["feature_size"] == json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())["feature_size"] and "speaker_norm" not in card
    assert card["encoder"]["sha256"] == shipped["sha256"] and (tmp_path / card["encoder"]["file"]).is_file()
    assert "BSD-2-Clause" in card["licence"] and any("Smart Turn" in c for c in card["credits"])
    model = EmotionModel(out)
    found = corp.discover([small_data / "ravdess"], corp.resolve_emotions(None))
    clip = found.clips[0]
    fs = dataset.build_features([clip], roots=[small_data / "ravdess"], cache_dir=None, jobs=1,
                                extractor=model.extractor)
    from ser_live.segmenter import session_utterances, span_of

    audio = dataset.load_audio(clip.path)
    span = span_of(audio, session_utterances(audio, dataset.segmenter_config())[0])
    np.testing.assert_allclose(model.extract(span), fs.X[0], rtol=1e-6, atol=1e-6)
    assert model.predict(fs.X[0]).shape == (len(model.labels),)
