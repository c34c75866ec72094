"""The centroid-offset speaker adaptation: the shared definition, the card field and the second head, one
state per source in the worker, the Detector and ``--session``, the trainer's two heads, and the runtime
giving what the trainer computes for the same clips."""

from __future__ import annotations

import hashlib
import json
import queue
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import assert_cli_refuses_model, logged_rows, real_clips
from ser_live import Detector, features
from ser_live.events import Job
from ser_live.model import EmotionModel, ModelError
from ser_live.segmenter import SegmenterConfig, speech_span
from ser_live.speaker_norm import CENTROID_METHOD, CentroidOffset
from ser_live.train import dataset, evaluate, export
from ser_live.train import card as model_card
from ser_live.train.model import Hyperparameters, fit_model
from ser_live.worker import Worker

TINY = Hyperparameters(hidden=(16,), max_iter=60, members=1)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _linear(W: np.ndarray):
    """A head: rows (or one row) -> softmax(x @ W)."""
    return lambda x: _softmax(np.asarray(x, np.float64) @ W)


# ------------------------------------------------------------------------------------ the definition


def test_offset_is_the_shrunk_sum_of_residuals_so_far_and_the_state_agrees():
    rng = np.random.default_rng(0)
    cents, rows = rng.normal(size=(3, 4)), rng.normal(size=(9, 4)) + 2.0
    off = CentroidOffset(cents, 10.0, "adapted")
    W0, W1 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    p0 = _linear(W0)(rows)
    seq = off.sequence(rows, p0)
    for n in range(len(rows)):
        r = rows[: n + 1] - cents[p0[: n + 1].argmax(axis=1)]
        np.testing.assert_allclose(seq[n], rows[n] - r.sum(axis=0) / (n + 1 + 10.0), rtol=1e-6)
    st, got = off.state(), []
    for x in rows:
        p, added = st.predict(x, _linear(W1), _linear(W0))
        again, _ = st.predict(x, _linear(W1), _linear(W0))
        np.testing.assert_array_equal(p, again)  # predicting does not change the state
        st.update(added)
        got.append(p)
    np.testing.assert_allclose(np.array(got), off.sequence_proba(rows, _linear(W1), _linear(W0)), atol=1e-6)
    assert st.n == len(rows)
    st.update(np.full(4, np.nan))  # a non-finite residual never enters the sum
    assert st.n == len(rows) and np.all(np.isfinite(st.total))
    # causal: an utterance's result does not depend on the ones after it
    head = off.sequence_proba(rows[:4], _linear(W1), _linear(W0))
    np.testing.assert_allclose(head, off.sequence_proba(rows, _linear(W1), _linear(W0))[:4], atol=1e-7)
    # each row alone: as the first utterance of a fresh state
    alone = off.alone_proba(rows, _linear(W1), _linear(W0))
    for x, p in zip(rows, alone):
        np.testing.assert_allclose(p, off.state().predict(x, _linear(W1), _linear(W0))[0], atol=1e-6)


def test_mean_logits_is_the_softmax_of_the_heads_mean_logits():
    rng = np.random.default_rng(1)
    za, zu = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    got = CentroidOffset(np.zeros((7, 2)), 10.0, "mean_logits").combined(_softmax(za), _softmax(zu))
    np.testing.assert_allclose(got, _softmax((za + zu) / 2), atol=1e-6)
    np.testing.assert_allclose(CentroidOffset(np.zeros((7, 2)), 10.0, "adapted").combined(_softmax(za), _softmax(zu)),
                               _softmax(za), atol=1e-6)


def test_a_speakers_constant_offset_is_removed_whatever_the_emotions_of_the_session():
    """Two classes around centroids ±1, a speaker shifted by +3 and heard in a session of one class only:
    the running mean would take the class for the speaker; the centroid offset converges to the shift."""
    cents = np.array([[-1.0, 0.0], [1.0, 0.0]])
    W = np.array([[-5.0, 5.0], [0.0, 0.0]])  # an unadapted head that still tells the classes apart shifted by +3
    rows = np.tile(cents[0] + [3.0, 0.0], (200, 1))  # all class 0... seen as class 1 by a head centred on 0
    unadapted = lambda x: _softmax((np.asarray(x, np.float64) - [3.0, 0.0]) @ W)  # noqa: E731 - knows the shift
    seq = CentroidOffset(cents, 10.0).sequence(rows, unadapted(rows))
    np.testing.assert_allclose(seq[-1], cents[0] + [3.0 * 10 / 210, 0.0], atol=1e-9)


# ------------------------------------------------------------------------------------ the card and the files


def _centroid_dir(tmp_path, fast_model, **changes):
    """A copy of the shipped fast model (which adapts by the centroid offset) under another name, its
    unadapted head beside it; ``changes`` alter the card field."""
    onnx = tmp_path / "c.onnx"
    shutil.copy(fast_model.path, onnx)
    card = json.loads(fast_model.path.with_suffix(".json").read_text())
    field = card["speaker_norm"]
    shutil.copy(fast_model.path.with_name(field["unadapted_model"]["file"]), tmp_path / "c.unadapted.onnx")
    off = CentroidOffset.from_card(field, fast_model.extractor.size, len(card["labels"])).with_unadapted(
        "c.unadapted.onnx", hashlib.sha256((tmp_path / "c.unadapted.onnx").read_bytes()).hexdigest())
    card["speaker_norm"] = off.to_card() | changes
    onnx.with_suffix(".json").write_text(json.dumps(card))
    return onnx


@pytest.fixture
def centroid_model(tmp_path, fast_model):
    return EmotionModel(_centroid_dir(tmp_path, fast_model))


def test_card_round_trip(centroid_model, tmp_path):
    off = centroid_model.speaker_norm
    assert isinstance(off, CentroidOffset) and off.shrink == 10.0 and off.combine == "mean_logits"
    field = json.loads((tmp_path / "c.json").read_text())["speaker_norm"]
    assert field["method"] == CENTROID_METHOD and field["unadapted_model"]["file"] == "c.unadapted.onnx"
    np.testing.assert_array_equal(off.centroids, np.array(field["centroids"]))  # exact through JSON
    assert off.centroids.shape == (7, features.FEATURE_SIZE) and centroid_model.unadapted is not None


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"combine": "max"}, "combine must be one of"),
        ({"shrink_clips": -1}, "shrink_clips"),
        ({"shrink_clips": "10"}, "shrink_clips"),
        ({"centroids": [[0.0] * features.FEATURE_SIZE] * 6}, "7 lists"),
        ({"centroids": [[0.0] * (features.FEATURE_SIZE - 1)] * 7}, f"of {features.FEATURE_SIZE} numbers"),
        ({"centroids": [[float("nan")] * features.FEATURE_SIZE] * 7}, "not finite"),
        ({"unadapted_model": {"file": "../c.unadapted.onnx", "sha256": "0"}}, "a file beside the model"),
        ({"unadapted_model": None}, "a file beside the model"),
        ({"unadapted_model": {"file": "gone.onnx", "sha256": "0"}}, "is missing"),
        ({"unadapted_model": {"file": "c.unadapted.onnx", "sha256": "0" * 64}}, "does not match the sha256"),
    ],
)
def test_a_malformed_or_mismatched_card_is_refused_in_one_line(change, needle, tmp_path, fast_model, capsys):
    onnx = _centroid_dir(tmp_path, fast_model, **change)
    with pytest.raises(ModelError, match=needle.replace("(", r"\(")):
        EmotionModel(onnx)
    assert_cli_refuses_model(onnx, "ser-live: model ", needle, tmp_path, capsys)


def test_an_unadapted_head_of_another_shape_is_refused(tmp_path, fast_model, default_model):
    onnx = _centroid_dir(tmp_path, fast_model)
    shutil.copy(default_model.path, tmp_path / "c.unadapted.onnx")  # 768 inputs, not 190
    card = json.loads(onnx.with_suffix(".json").read_text())
    card["speaker_norm"]["unadapted_model"]["sha256"] = hashlib.sha256(default_model.path.read_bytes()).hexdigest()
    onnx.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="expects input shape"):
        EmotionModel(onnx)


# ------------------------------------------------------------------------------------ the runtime


@pytest.fixture(scope="module")
def spans():
    paths = real_clips(3, 3)
    return [speech_span(dataset.load_audio(p), SegmenterConfig()) for p in paths]


def test_worker_state_per_source_and_provisional_jobs_read_it_without_updating(centroid_model, spans):
    model, off = centroid_model, centroid_model.speaker_norm
    w = Worker(model, queue.Queue().put)
    partial = spans[1][: spans[1].size // 2]
    jobs = [
        Job("a.wav", 0.0, 1.0, spans[0], True, 0.0, 1),
        Job("a.wav", 1.0, 2.0, partial, False, 0.0, 1),  # provisional: adapted with the state, never added
        Job("a.wav", 1.0, 3.0, spans[1], True, 0.0, 1),
        Job("a.wav", 3.0, 4.0, spans[2], True, 0.0, 1),
        Job("b.wav", 0.0, 1.0, spans[3], True, 0.0, 2),  # the next source starts afresh
    ]
    results = [w.classify(j) for j in jobs]
    assert [r.adapted for r in results] == [0, 1, 1, 2, 0]
    st, expected = off.state(), []
    for j in jobs[:4]:
        p, added = st.predict(features.extract(j.audio), model.predict, model.unadapted)
        expected.append(p)
        if j.final:
            st.update(added)
    expected.append(off.state().predict(features.extract(spans[3]), model.predict, model.unadapted)[0])
    for r, p in zip(results, expected):
        np.testing.assert_allclose(r.probs, p, atol=1e-6)
    alone = off.state().predict(features.extract(spans[2]), model.predict, model.unadapted)[0]
    assert np.abs(results[3].probs - alone).max() > 1e-3  # the state moved the third utterance's result


def test_detector_reset_restarts_the_offset(centroid_model, spans):
    clip = spans[4]
    alone = Detector(centroid_model).classify(clip, 16000)
    d = Detector(centroid_model)
    for s in spans[:3]:
        d.classify(s, 16000)
    assert max(abs(d.classify(clip, 16000).probabilities[k] - alone.probabilities[k]) for k in alone.probabilities) > 1e-3
    d.reset()
    assert d.classify(clip, 16000) == alone


def test_session_one_carries_the_offset_from_file_to_file(centroid_model, tmp_path, capsys, spans):
    folder = tmp_path / "speaker"
    folder.mkdir()
    for i, s in enumerate(spans[:4]):
        sf.write(folder / f"{i}.wav", np.concatenate([np.zeros(8000, np.float32), s, np.zeros(8000, np.float32)]), 16000)
    args = ("--model", str(centroid_model.path), "--speed", "0")
    p = lambda rows: np.array([[float(v) for k, v in r.items() if k.startswith("p_")] for r in rows])  # noqa: E731
    per_file = p(logged_rows([folder], tmp_path / "a.csv", capsys, *args))
    one = p(logged_rows([folder], tmp_path / "b.csv", capsys, *args, "--session", "one"))
    assert per_file.shape == one.shape and per_file.shape[0] >= 4
    np.testing.assert_allclose(one[0], per_file[0], atol=1e-4)  # the first utterance has nothing before it
    assert np.abs(one[1:] - per_file[1:]).max() > 0.01


# ------------------------------------------------------------------------------------ the trainer


def _synthetic(seed: int = 0, speakers: int = 12, per_class: int = 5):
    """Three classes around fixed centroids, each speaker shifted by its own offset."""
    rng = np.random.default_rng(seed)
    cents = rng.normal(scale=3.0, size=(3, 6))
    y = np.tile(np.repeat(["a", "b", "c"], per_class), speakers)
    groups = np.repeat([f"s{i:02d}" for i in range(speakers)], 3 * per_class)
    shift = {s: rng.normal(scale=2.0, size=6) for s in sorted(set(groups))}
    X = np.stack([cents["abc".index(c)] + shift[g] + rng.normal(scale=1.0, size=6) for c, g in zip(y, groups)])
    return X.astype(np.float32), y, groups


def test_the_trainer_fits_two_heads_and_its_centroids_on_the_training_rows_only():
    X, y, groups = _synthetic()
    rank = evaluate.arrival_rank(groups, 0)
    sn = evaluate.CentroidSessions(10.0, groups, rank)
    tr, te = np.flatnonzero(groups < "s08"), np.flatnonzero(groups >= "s08")
    fold = evaluate.fit_fold(X, y, tr, te, TINY, 0, sn=sn)
    np.testing.assert_allclose(fold.norm.centroids[0], X[tr][y[tr] == "a"].mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(fold.unadapted.predict_proba(X[te]), fit_model(X[tr], y[tr], TINY, 0).predict_proba(X[te]))
    free = sn.offset_free(fold.norm, X, y, tr)
    for s in set(groups[tr]):  # each training speaker's rows sit around the centroids on average
        m = groups[tr] == s
        r = free[m] - fold.norm.centroids[np.searchsorted(["a", "b", "c"], y[tr][m])]
        assert np.abs(r.mean(axis=0)).max() < 1e-5
    leaky = X.copy()
    leaky[te] += 100.0
    other = evaluate.fit_fold(leaky, y, tr, te, TINY, 0, sn=sn)
    np.testing.assert_array_equal(other.norm.centroids, fold.norm.centroids)
    # held-out speakers: each one causal session in its arrival order
    s = te[groups[te] == "s09"]
    s = s[np.argsort(rank[s])]
    np.testing.assert_allclose(fold.proba(X)[np.searchsorted(te, s)], fold.session_proba(X[s]), atol=1e-7)


def test_an_unbalanced_session_does_not_collapse():
    """Held-out speakers heard in sessions of one class plus a few others: the centroid offset keeps close
    to its balanced accuracy and above no adaptation; the running mean of the same sessions does not."""
    X, y, groups = _synthetic(0, speakers=16, per_class=8)
    rank = evaluate.arrival_rank(groups, 0)
    tr, te = np.flatnonzero(groups < "s10"), np.flatnonzero(groups >= "s10")
    cen = evaluate.fit_fold(X, y, tr, te, TINY, 0, sn=evaluate.CentroidSessions(10.0, groups, rank))
    run = evaluate.fit_fold(X, y, tr, te, TINY, 0, sn=evaluate.SessionNorm(3.0, groups, rank))
    balanced = np.mean(cen.predict(X) == y[te])
    hits = {"centroid": [], "running mean": [], "none": []}
    for s in sorted(set(groups[te])):
        mine = te[groups[te] == s]
        for c in "abc":
            session = np.concatenate([mine[y[mine] == c], mine[y[mine] != c][:2]])
            hits["centroid"] += list(cen.classes_[cen.session_proba(X[session]).argmax(axis=1)] == y[session])
            hits["running mean"] += list(run.classes_[run.session_proba(X[session]).argmax(axis=1)] == y[session])
            hits["none"] += list(cen.unadapted.predict(X[session]) == y[session])
    acc = {k: np.mean(v) for k, v in hits.items()}
    assert acc["centroid"] >= balanced - 0.03 and acc["centroid"] >= acc["none"] - 0.01, (balanced, acc)
    assert acc["running mean"] < acc["centroid"] - 0.1, acc


def test_the_runtime_gives_what_the_trainer_computes_on_real_clips(fast_model, tmp_path):
    """Trainer: a fold model with the centroid offset on the features of real clips (each clip alone), every
    speaker one session in the seeded arrival order. Runtime: both heads exported, the card written as
    ser-evaluate writes a fold's, and the worker classifying each clip's speech in that order, one source
    per speaker."""
    paths = real_clips(6, 6)
    groups = np.array([p.parent.name if "Actor" in p.parent.name else p.name[:4] for p in paths])
    X = np.stack([dataset.clip_features(str(p), SegmenterConfig())[0] for p in paths])
    y = np.array([p.name.split("_")[2] if "_" in p.name else p.name.split("-")[2] for p in paths])
    rank = evaluate.arrival_rank(groups, seed=0)
    sn = evaluate.CentroidSessions(10.0, groups, rank)
    everyone = np.arange(len(X))
    fold = evaluate.fit_fold(X, y, everyone, everyone, TINY, 0, sn=sn)
    expected = fold.proba(X)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(export.to_onnx_bytes(fold.model, X.shape[1]))
    head = export.to_onnx_bytes(fold.unadapted, X.shape[1])
    (tmp_path / "m.unadapted.onnx").write_bytes(head)
    norm = fold.norm.with_unadapted("m.unadapted.onnx", hashlib.sha256(head).hexdigest())
    card = model_card.runtime_card(list(fold.classes_), fast_model.extractor.card(), norm)
    onnx.with_suffix(".json").write_text(json.dumps(card))
    w = Worker(EmotionModel(onnx), queue.Queue().put)
    got = np.zeros_like(expected)
    for source_id, s in enumerate(sorted(set(groups)), 1):
        idx = np.flatnonzero(groups == s)
        for i in idx[np.argsort(rank[idx])]:
            audio = speech_span(dataset.load_audio(paths[i]), SegmenterConfig())
            got[i] = w.classify(Job(s, 0.0, 1.0, audio, True, 0.0, source_id)).probs
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected - fold.unadapted.predict_proba(X)).max() > 1e-3  # the offset did something


def test_ser_train_writes_both_heads_and_a_card_the_runtime_reads(tmp_path):
    from ser_live.train.cli import main

    root = tmp_path / "data"
    for p in real_clips(6, 6):
        corpus = root / ("ravdess" if "Actor" in p.parent.name else "crema-d")
        corpus.mkdir(parents=True, exist_ok=True)
        (corpus / p.name).symlink_to(p)
    out = tmp_path / "m.onnx"
    assert main(["--data", str(root), "--out", str(out), "--no-eval", "--augment", "0", "--jobs", "1", "--hidden", "8",
                 "--max-iter", "30", "--members", "1", "--encoder", "none", "--speaker-norm", "centroid",
                 "--combine", "adapted", "--cache-dir", str(tmp_path / "cache")]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    field = card["speaker_norm"]
    assert field["method"] == CENTROID_METHOD and field["shrink_clips"] == 10 and field["combine"] == "adapted"
    head = tmp_path / field["unadapted_model"]["file"]
    assert head.name == "m.unadapted.onnx" and hashlib.sha256(head.read_bytes()).hexdigest() == field["unadapted_model"]["sha256"]
    assert card["training"]["speaker_norm"]["combine"] == "adapted"
    model = EmotionModel(out)
    assert model.speaker_norm.combine == "adapted" and model.speaker_norm.centroids.shape == (len(card["labels"]), 190)


def test_the_stream_replay_exports_both_heads():
    """ser-evaluate's stream-vs-clip path writes a fold's two heads and card as ser-train does, and the live
    pipeline's labels follow the fold's causal clip-by-clip labels."""
    from ser_live.train import evaluate_cli
    from ser_live.train.corpora import discover, resolve_emotions

    paths = real_clips(5, 0)
    clips = [c for c in discover([p.parent for p in paths], resolve_emotions(None)).clips if c.path in set(paths)]
    X = np.stack([dataset.clip_features(str(c.path), SegmenterConfig())[0] for c in clips])
    y = np.array([c.label for c in clips])
    groups = np.array(["s"] * len(clips))
    idx = np.arange(len(clips))
    fold = evaluate.fit_fold(X, y, idx, idx, TINY, 0, sn=evaluate.CentroidSessions(10.0, groups, idx))
    pred, stats = evaluate_cli._stream_predictions(fold, [clips], -60.0, seed=0)
    assert stats["missed"] == 0 and len(pred) == len(clips)
    assert np.mean(np.array(pred) == fold.predict(X, idx)) >= 0.6
