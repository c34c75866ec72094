"""Causal speaker normalisation: the shared definition, the card field, one state per source in the
worker and the live pipeline, and the runtime giving what the trainer computes for the same clips."""

from __future__ import annotations

import json
import queue
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import assert_cli_refuses_model, join_with_pauses, real_clips
from ser_live import features
from ser_live.events import Job, Result
from ser_live.model import EmotionModel, ModelError
from ser_live.replay import replay_files
from ser_live.segmenter import SegmenterConfig, speech_span
from ser_live.speaker_norm import METHOD, SpeakerNorm
from ser_live.worker import Worker
from ser_live.train import dataset, evaluate


def _clip_vectors(paths):
    """(speech span, feature vector) of each clip, as the trainer computes them."""
    spans = [speech_span(dataset.load_audio(p), SegmenterConfig()) for p in paths]
    return spans, [features.extract(s) for s in spans]


@pytest.fixture(scope="module")
def clips():
    paths = real_clips(4, 4)
    spans, vecs = _clip_vectors(paths)
    return paths, spans, np.stack(vecs)


def _model_with(tmp_path, fast_model, speaker_norm=...):
    """A copy of the shipped model whose card has ``speaker_norm`` set (or removed when ``...``)."""
    onnx = tmp_path / "m.onnx"
    shutil.copy(fast_model.path, onnx)
    card = json.loads(fast_model.path.with_suffix(".json").read_text())
    card.pop("speaker_norm", None)
    if speaker_norm is not ...:
        card["speaker_norm"] = speaker_norm
    onnx.with_suffix(".json").write_text(json.dumps(card))
    return onnx


@pytest.fixture
def norm_model(tmp_path, fast_model, clips):
    mean = clips[2].astype(np.float64).mean(axis=0) + 0.5  # a training mean unlike these clips
    return EmotionModel(_model_with(tmp_path, fast_model, SpeakerNorm(mean, 3.0).to_card()))


# ------------------------------------------------------------------------------------ the definition


def test_running_mean_formula_and_state():
    rng = np.random.default_rng(0)
    mu, rows = rng.normal(size=6), rng.normal(size=(7, 6)) + 4.0
    norm = SpeakerNorm(mu, 3.0)
    out = norm.sequence(rows)
    for n in range(len(rows)):
        expected = rows[n] - (3 * mu + rows[: n + 1].sum(axis=0)) / (3 + n + 1) + mu
        np.testing.assert_allclose(out[n], expected, rtol=1e-6)
    st = norm.state()
    np.testing.assert_array_equal(st.apply(rows[0]), out[0])
    np.testing.assert_array_equal(st.apply(rows[0]), out[0])  # apply does not change the state
    assert st.n == 0
    st.update(rows[0])
    st.update(np.full(6, np.nan))  # a non-finite vector never enters the mean
    assert st.n == 1
    np.testing.assert_array_equal(st.apply(rows[1]), out[1])
    # a constant offset of the speaker is removed as utterances accumulate
    shifted = norm.sequence(rows + 10.0)
    assert np.abs(shifted[-1] - out[-1]).max() == pytest.approx(10.0 * 3 / (3 + len(rows)), rel=1e-5)


def test_memory_weights_recent_utterances_and_saturates():
    rng = np.random.default_rng(1)
    mu, rows = rng.normal(size=5), rng.normal(size=(40, 5))
    norm = SpeakerNorm(mu, 3.0, memory=8.0)
    out, keep = norm.sequence(rows), 1.0 - 1.0 / 8.0
    for n in range(len(rows)):
        w = keep ** np.arange(n - 1, -1, -1)  # weights of rows 0..n-1 when row n arrives
        expected = rows[n] - (3 * mu + w @ rows[:n] + rows[n]) / (3 + w.sum() + 1) + mu
        np.testing.assert_allclose(out[n], expected, rtol=1e-5, atol=1e-6)
    st = norm.state()
    for x in rows:
        st.update(x)
    assert st.n == 40 and st.weight == pytest.approx(8.0 * (1 - keep**40))


def test_a_new_speaker_in_the_same_source_is_learned_with_memory_not_without():
    """A microphone handed on after 200 utterances of speaker a (offset -2): 60 utterances later, the
    new speaker b's (offset +2) vectors are nearly normalised (0 when fully adapted) only when the
    running mean forgets; never forgetting, b still looks like +3 (more than b's own offset)."""
    mu, a, b = np.zeros(3), np.full(3, -2.0), np.full(3, 2.0)
    rows = np.concatenate([np.tile(a, (200, 1)), np.tile(b, (60, 1))])
    forgets = SpeakerNorm(mu, 3.0, memory=30.0).sequence(rows)[-1]
    never = SpeakerNorm(mu, 3.0).sequence(rows)[-1]
    assert np.abs(forgets).max() < 1.0 and np.abs(never).min() > 2.5


def test_card_round_trip(tmp_path, fast_model, clips):
    mean = clips[2].astype(np.float64).mean(axis=0)
    field = SpeakerNorm(mean, 3.0).to_card()
    assert field["method"] == METHOD and field["prior_clips"] == 3 and len(field["mean"]) == features.FEATURE_SIZE
    assert "memory_clips" not in field  # never forgets: the field of earlier models, read the same way
    model = EmotionModel(_model_with(tmp_path, fast_model, json.loads(json.dumps(field))))
    np.testing.assert_array_equal(model.speaker_norm.mean, mean)  # exact through JSON
    assert model.speaker_norm.prior == 3.0 and model.speaker_norm.memory is None
    field = SpeakerNorm(mean, 3.0, 30.0).to_card()
    assert field["memory_clips"] == 30
    model = EmotionModel(_model_with(tmp_path, fast_model, json.loads(json.dumps(field))))
    assert model.speaker_norm.memory == 30.0


@pytest.mark.parametrize(
    "field, needle",
    [
        ({"method": "zscore", "prior_clips": 3, "mean": [0.0] * features.FEATURE_SIZE}, "'zscore' is not implemented"),
        ({"prior_clips": 3, "mean": [0.0] * features.FEATURE_SIZE}, "None is not implemented"),
        ({"method": METHOD, "prior_clips": 3, "mean": [0.0] * (features.FEATURE_SIZE - 1)}, f"list of {features.FEATURE_SIZE}"),
        ({"method": METHOD, "prior_clips": 3, "mean": [float("nan")] * features.FEATURE_SIZE}, "not finite numbers"),
        ({"method": METHOD, "prior_clips": 3, "mean": [0.0] * (features.FEATURE_SIZE - 1) + [10**400]}, "not finite"),
        ({"method": METHOD, "prior_clips": 3, "mean": [0.0] * (features.FEATURE_SIZE - 1) + ["x"]}, "not finite numbers"),
        ({"method": METHOD, "prior_clips": -1, "mean": [0.0] * features.FEATURE_SIZE}, "prior_clips"),
        ({"method": METHOD, "prior_clips": "3", "mean": [0.0] * features.FEATURE_SIZE}, "prior_clips"),
        ({"method": METHOD, "prior_clips": 3, "memory_clips": 0.5, "mean": [0.0] * features.FEATURE_SIZE}, "memory_clips"),
        ({"method": METHOD, "prior_clips": 3, "memory_clips": "30", "mean": [0.0] * features.FEATURE_SIZE}, "memory_clips"),
        ("causal", "not an object"),
    ],
)
def test_bad_speaker_norm_field_is_refused_in_one_line(field, needle, tmp_path, fast_model, capsys):
    onnx = _model_with(tmp_path, fast_model, field)
    with pytest.raises(ModelError, match="speaker"):
        EmotionModel(onnx)
    assert_cli_refuses_model(onnx, "ser-live: model card ", needle, tmp_path, capsys)


def test_card_without_the_field_means_no_normalisation(tmp_path, fast_model, clips):
    model = EmotionModel(_model_with(tmp_path, fast_model))
    assert model.speaker_norm is None
    _, spans, vecs = clips
    r = Worker(model, queue.Queue().put).classify(Job("f", 0.0, 1.0, spans[0], True, 0.0, 1))
    assert r.adapted is None
    np.testing.assert_array_equal(r.probs, model.predict(vecs[0]))


# ------------------------------------------------------------------------------------ the runtime


def test_worker_state_per_source_and_provisional_jobs_do_not_update(norm_model, clips):
    _, spans, vecs = clips
    norm = norm_model.speaker_norm
    w = Worker(norm_model, queue.Queue().put)
    partial = spans[1][: spans[1].size // 2]
    jobs = [
        Job("a.wav", 0.0, 1.0, spans[0], True, 0.0, 1),
        Job("a.wav", 1.0, 2.0, partial, False, 0.0, 1),  # provisional: normalised, never added
        Job("a.wav", 1.0, 3.0, spans[1], True, 0.0, 1),
        Job("a.wav", 3.0, 4.0, spans[2], True, 0.0, 1),
        Job("b.wav", 0.0, 1.0, spans[3], True, 0.0, 2),  # next source: a fresh state
        Job("a.wav", 0.0, 1.0, spans[4], True, 0.0, 3),  # the same file again is a new source too
    ]
    results = [w.classify(j) for j in jobs]
    assert [r.adapted for r in results] == [0, 1, 1, 2, 0, 0]
    st = norm.state()
    expected = [st.apply(vecs[0])]
    st.update(vecs[0])
    expected.append(st.apply(features.extract(partial)))
    expected.append(st.apply(vecs[1]))
    st.update(vecs[1])
    expected.append(st.apply(vecs[2]))
    expected += [norm.state().apply(vecs[3]), norm.state().apply(vecs[4])]
    for r, x in zip(results, expected):
        np.testing.assert_allclose(r.probs, norm_model.predict(x), atol=1e-6)
    assert not np.allclose(results[3].probs, norm_model.predict(norm.state().apply(vecs[2])), atol=1e-4)


def test_live_pipeline_adapts_per_file_and_provisional_results_do_not_count(norm_model, tmp_path):
    """Paced replay (provisional jobs on) of two files: every result's ``adapted`` is the number of
    final utterances of its own file before it."""
    paths = []
    for i, group in enumerate([real_clips(2, 1), real_clips(0, 2)]):
        x, _ = join_with_pauses(group, seed=i)
        paths.append(tmp_path / f"part{i}.wav")
        sf.write(paths[-1], x, 16000)
    results = [i for i in replay_files(norm_model, paths, speed=8.0, timeout=30) if isinstance(i, Result)]
    finals = {str(p): 0 for p in paths}
    for r in results:
        assert r.probs is not None and r.adapted == finals[r.job.source], (r.job, r.adapted)
        finals[r.job.source] += r.job.final
    assert list(finals.values()) == [3, 2]
    assert any(not r.job.final and r.adapted > 0 for r in results)  # provisional jobs after finals


def test_runtime_equals_trainer_on_the_same_clips_in_the_same_order(fast_model, clips, tmp_path):
    """Trainer: features of each clip (``dataset.clip_features``), every speaker one session in the
    seeded arrival order, ONNX Runtime on the batch. Runtime: the worker classifying each clip's speech
    in that order, one source per speaker, with the normaliser read back from the card."""
    import onnxruntime as ort

    paths, _, _ = clips
    groups = np.array([p.parent.name if "Actor" in p.parent.name else p.name[:4] for p in paths])
    X = np.stack([dataset.clip_features(str(p), SegmenterConfig())[0] for p in paths])
    sn = evaluate.SessionNorm(3.0, groups, evaluate.arrival_rank(groups, seed=0))
    norm = sn.fit(X, np.arange(len(X)))
    trained = sn.apply(norm, X, np.arange(len(X)))
    onnx = _model_with(tmp_path, fast_model, norm.to_card())
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    expected = sess.run(["probabilities"], {"features": trained})[0]

    model = EmotionModel(onnx)
    w = Worker(model, queue.Queue().put)
    got = np.zeros_like(expected)
    for source_id, s in enumerate(sorted(set(groups)), 1):
        idx = np.flatnonzero(groups == s)
        for i in idx[np.argsort(sn.rank[idx])]:
            audio = speech_span(dataset.load_audio(paths[i]), SegmenterConfig())
            got[i] = w.classify(Job(s, 0.0, 1.0, audio, True, 0.0, source_id)).probs
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert sorted(sn.rank[groups == groups[0]]) == list(range((groups == groups[0]).sum()))


# ------------------------------------------------------------------------------------ the trainer


def test_training_mean_comes_from_the_training_rows_only():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    aug = [X + 1.0]
    y = np.array(list("ab") * 20)
    groups = np.repeat([f"s{i}" for i in range(8)], 5)
    sn = evaluate.SessionNorm(3.0, groups, evaluate.arrival_rank(groups, 0))
    tr, te = np.flatnonzero(groups < "s5"), np.flatnonzero(groups >= "s5")
    Xt, yt, norm = evaluate.fold_rows(X, y, tr, aug, sn)
    np.testing.assert_allclose(norm.mean, np.concatenate([X[tr], aug[0][tr]]).astype(np.float64).mean(axis=0), rtol=1e-12)
    leaky = X.copy()
    leaky[te] += 100.0  # whatever the held-out speakers sound like, training is the same
    Xt2, _, norm2 = evaluate.fold_rows(leaky, y, tr, [leaky + 1.0], sn)
    np.testing.assert_array_equal(Xt, Xt2)
    np.testing.assert_array_equal(norm.mean, norm2.mean)
    assert Xt.shape == (2 * tr.size, 5) and list(yt) == list(y[tr]) * 2
    # held-out speakers: each one session in its arrival order, with the training mean
    held = evaluate.held_out_rows(X, te, sn, norm)
    s = te[groups[te] == "s6"]
    s = s[np.argsort(sn.rank[s])]
    np.testing.assert_array_equal(held[np.searchsorted(te, s)], norm.sequence(X[s]))
    # a speaker's order does not depend on who else is in the data
    np.testing.assert_array_equal(evaluate.arrival_rank(groups[groups == "s6"], 0), sn.rank[groups == "s6"])
