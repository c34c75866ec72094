"""The whole evaluation in one run: speaker-grouped CV per corpus, cross-corpus, robustness
conditions on the held-out folds, calibration, and stream-vs-clip through the real runtime path.

    ser-evaluate --data ../shared/data/ravdess ../shared/data/crema-d --out reports/evaluation

writes ``reports/evaluation.json`` and ``reports/evaluation.md`` and prints the markdown. Uses the same
recipe and defaults as ``ser-train`` (features, ``--augment``, MLP hyperparameters, seed) and the same
feature cache, so after a ``ser-train`` run only the corrupted test copies are new work.

Robustness: each condition (``ser_live.train.augment.test_conditions``) corrupts the *held-out* clips' raw audio
before ``speech_span`` and ``extract``; the fold models are the ones trained for the clean CV row, so
"cost" is clean UAR minus corrupted UAR on exactly the same clips and models.

Speaker adaptation (``--speaker-norm causal|centroid``, as ser-train's): every fold fits the running mean or
the centroids on its training rows only; each held-out speaker is one session in a seeded arrival order, under
every condition, heard causally as the runtime hears a source (only utterances already heard, and the current
one). "Speaker changes" rescores the same held-out clips as if a source mixed speakers: every clip as the first
of its source, with two speakers of a corpus interleaved in one source, and after another speaker's whole
session in the same source (a microphone handed on: what ``--norm-memory`` is for). With the centroid offset the
evaluation also scores each head alone (``heads``): the unadapted one is the recipe without adaptation.

Stream vs clip: every fold's held-out clips (or a seeded sample of ``--stream-clips`` per fold) are joined,
one WAV file per speaker in the speaker's arrival order, with 0.8-1.6 s pauses over a white noise floor
(``--stream-floor`` dBFS), and run through ``ser_live.replay.replay_files`` (the live pipeline)
(what ``ser-live --file ... --speed 0`` does: each file is a source the runtime adapts to chronologically)
with that fold's model exported to ONNX with its card. Each clip takes the final utterance that overlaps it
most; a clip no utterance overlaps counts as wrong. The same model scores the same clips one by one,
normalised per speaker in the same order; the gap is compared per corpus, as the CV rows are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ser_live.arguments import OneLineParser
from ser_live.features import SAMPLE_RATE
from ser_live.speaker_norm import COMBINES, CentroidOffset
from ser_live.train import needs_extra

with needs_extra("ser-evaluate"):  # without the train extra: one line saying what to install, exit 1
    from ser_live.train import augment, corpora as corp, dataset, encoders, evaluate, export, recipe, streams
    from ser_live.train import card as model_card
    from ser_live.train.cli import (SPEAKER_NORMS, TrainError, adaptation, format_blocks, make_extractor, parse_blocks,
                                     positive_int)
    from ser_live.train.model import Hyperparameters

TARGETS = {
    "cv_ravdess": 0.70,
    "cv_crema-d": 0.66,
    "new_text": 0.62,
    "unbalanced_cost": 0.03,
    "ece": 0.03,
    "cross": 0.45,
    "noise_cost": 0.05,
    "gain_cost": 0.01,
    "telephone_cost": 0.08,
    "stream_gap": 0.02,
}
#: the robustness conditions held to a target, and which
CONDITION_TARGETS = {"white 15 dB": "noise_cost", "babble 15 dB": "noise_cost", "gain +20 dB": "gain_cost",
                     "gain -20 dB": "gain_cost", "telephone 300-3400 Hz": "telephone_cost"}


def _features(clips, roots, args, corruption=None, label="", rank=None):
    t0 = time.perf_counter()
    fs = dataset.build_features(clips, roots=roots, cache_dir=args.cache_dir, jobs=args.jobs, corruption=corruption,
                                rank=rank, extractor=args.extractor)
    if len(fs.clips) != len(clips):
        raise SystemExit(f"{len(clips) - len(fs.clips)} clips failed ({label}): {fs.failed[:1]}")
    print(f"features {label or 'clean'}: {time.perf_counter() - t0:.0f} s ({fs.cached} cached)", file=sys.stderr, flush=True)
    return fs.X


def _stream_predictions(fold: evaluate.FoldModel, sessions: list[list], floor_dbfs: float, seed: int,
                        extractor=None) -> tuple[list[str], dict]:
    """Run one joined WAV file per session (a list of clips) through the live pipeline as consecutive
    sources, with the fold's model exported as ser-train exports one; one label (or "none") per clip,
    sessions concatenated."""
    import soundfile as sf

    from ser_live.events import Result
    from ser_live.model import EmotionModel
    from ser_live.replay import replay_files

    extractor = extractor or dataset.handcrafted()
    labels, norm = list(fold.classes_), fold.norm
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "fold.onnx"
        onnx_path.write_bytes(export.to_onnx_bytes(fold.model, extractor.size))
        if isinstance(norm, CentroidOffset):
            head = export.to_onnx_bytes(fold.unadapted, extractor.size)
            (Path(tmp) / "fold.unadapted.onnx").write_bytes(head)
            norm = norm.with_unadapted("fold.unadapted.onnx", hashlib.sha256(head).hexdigest())
        card = model_card.runtime_card(labels, extractor.card(), norm)
        if extractor.encoder is not None:
            (Path(tmp) / card["encoder"]["file"]).write_bytes(extractor.encoder.path.read_bytes())
        export.sidecar(onnx_path, ".json").write_text(json.dumps(card))
        files, spans, samples = [], [], 0
        for i, clips in enumerate(sessions):
            x, sp = streams.join_with_pauses([dataset.load_audio(c.path) for c in clips],
                                             np.random.default_rng(seed + i), floor_dbfs=floor_dbfs)
            files.append(Path(tmp) / f"session{i:03d}.wav")
            sf.write(files[-1], x, SAMPLE_RATE, subtype="FLOAT")
            spans.append(sp)
            samples += x.size
        t0 = time.perf_counter()
        results = [i for i in replay_files(EmotionModel(onnx_path), files, speed=0)
                   if isinstance(i, Result) and i.job.final and i.probs is not None]
        elapsed = time.perf_counter() - t0
    out = []
    for f, file_spans in zip(files, spans):
        mine = [r for r in results if r.job.source == str(f)]
        starts = np.array([r.job.start_s for r in mine]) * SAMPLE_RATE
        ends = np.array([r.job.end_s for r in mine]) * SAMPLE_RATE
        for s, e in file_spans:
            overlap = np.minimum(ends, e) - np.maximum(starts, s)
            if overlap.size and overlap.max() > 0:
                out.append(labels[int(np.argmax(mine[int(np.argmax(overlap))].probs))])
            else:
                out.append("none")
    stats = {"utterances": len(results), "clips": sum(map(len, spans)), "sources": len(files),
             "missed": out.count("none"), "audio_s": round(samples / SAMPLE_RATE, 1), "replay_s": round(elapsed, 1),
             "floor_dbfs": floor_dbfs}
    return out, stats


def _mixed_sessions(groups: np.ndarray, corpus: np.ndarray, idx: np.ndarray, seed: int) -> list[np.ndarray]:
    """Held-out clips ``idx`` as sources of two speakers each (same corpus, seeded pairs; an odd one out
    alone), the two speakers' clips interleaved in a seeded random order."""
    rng = np.random.default_rng(seed)
    out = []
    for c in sorted(set(corpus[idx])):
        speakers = rng.permutation(sorted(set(groups[idx][corpus[idx] == c])))
        for k in range(0, len(speakers), 2):
            out.append(rng.permutation(idx[np.isin(groups[idx], speakers[k:k + 2])]))
    return out


def _switch_sessions(groups: np.ndarray, corpus: np.ndarray, idx: np.ndarray, rank: np.ndarray,
                     seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out clips ``idx`` as sources where one speaker's whole session (arrival order) is followed by
    another's: (first, second) pairs, same corpus, seeded; every speaker is the second one exactly once."""
    rng = np.random.default_rng(seed)
    out = []
    for c in sorted(set(corpus[idx])):
        speakers = rng.permutation(sorted(set(groups[idx][corpus[idx] == c])))
        sessions = [idx[groups[idx] == s] for s in speakers]
        sessions = [s[np.argsort(rank[s], kind="stable")] for s in sessions]
        if len(sessions) > 1:
            out += [(sessions[k - 1], sessions[k]) for k in range(len(sessions))]
    return out


def _stream_vs_clips(fold_models: list[evaluate.FoldModel], clips, X, X_floor, y, corpus, groups, rank, args) -> dict:
    """Each fold's held-out clips (a seeded sample of ``args.stream_clips`` per fold if > 0) streamed
    through the live pipeline by that fold's model and scored clip by clip by the same model; UAR per corpus."""
    rng = np.random.default_rng(args.seed)
    stream_pred, clip_pred, clip_floor_pred, picked = [], [], [], []
    stats: dict = {}
    for k, fold in enumerate(fold_models):
        te = fold.test
        pick = te if args.stream_clips <= 0 else rng.choice(te, size=min(args.stream_clips, te.size), replace=False)
        sessions = [pick[groups[pick] == s] for s in sorted(set(groups[pick]))]
        sessions = [s[np.argsort(rank[s], kind="stable")] for s in sessions]  # each speaker's arrival order
        pick = np.concatenate(sessions)
        pred, st = _stream_predictions(fold, [[clips[i] for i in s] for s in sessions], args.stream_floor,
                                       args.seed + 1000 * k, args.extractor)
        for key, v in st.items():
            stats[key] = v if key == "floor_dbfs" else stats.get(key, 0) + v
        stream_pred += pred
        clip_pred += list(fold.predict(X, pick))
        clip_floor_pred += list(fold.predict(X_floor, pick))
        picked.append(pick)
    pick = np.concatenate(picked)
    stats["audio_s"], stats["replay_s"] = round(stats["audio_s"], 1), round(stats["replay_s"], 1)
    stream_pred, clip_pred, clip_floor_pred = map(np.array, (stream_pred, clip_pred, clip_floor_pred))
    out = {**stats, "folds": len(fold_models), "agreement_stream_vs_clips": float(np.mean(stream_pred == clip_pred)),
           "per_corpus": {}}
    for c in sorted(set(corpus[pick])):
        m = corpus[pick] == c
        labels = sorted(set(y[corpus == c]))
        u_stream, u_clips = evaluate.uar(y[pick][m], stream_pred[m], labels), evaluate.uar(y[pick][m], clip_pred[m], labels)
        out["per_corpus"][c] = {"clips": int(m.sum()), "uar_stream": u_stream, "uar_clips": u_clips,
                                "gap": u_clips - u_stream,
                                "uar_clips_floor60": evaluate.uar(y[pick][m], clip_floor_pred[m], labels)}
    return out


def _labels(fold: evaluate.FoldModel, proba: np.ndarray) -> np.ndarray:
    return fold.classes_[proba.argmax(axis=1)]


def _heads(sn) -> list[str]:
    """The ways of scoring besides the recipe's that the evaluation reports: with the centroid offset, the
    other way of combining the heads and the unadapted head alone (the recipe without adaptation)."""
    if not isinstance(sn, evaluate.CentroidSessions):
        return []
    return [f"combine {c}" for c in COMBINES if c != sn.combine] + ["unadapted head alone"]


def _head_alone(fold: evaluate.FoldModel, name: str) -> evaluate.FoldModel:
    """``fold`` scored the way ``name`` (one of :func:`_heads`) says."""
    if name == "unadapted head alone":
        return evaluate.FoldModel(fold.unadapted, fold.train, fold.test, None, None)
    return dataclasses.replace(fold, norm=dataclasses.replace(fold.norm, combine=name.removeprefix("combine ")))


def _unbalanced_sessions(groups: np.ndarray, y: np.ndarray, idx: np.ndarray, seed: int) -> list[np.ndarray]:
    """Held-out clips ``idx`` as sessions where one emotion dominates: for every speaker and every emotion
    it has, a session of all its clips of that emotion (about three quarters) plus a third as many of its
    other clips (seeded), in a seeded order. Every emotion is dominant for every speaker once."""
    rng = np.random.default_rng(seed)
    out = []
    for s in sorted(set(groups[idx])):
        mine = idx[groups[idx] == s]
        for label in sorted(set(y[mine])):
            dominant, others = mine[y[mine] == label], mine[y[mine] != label]
            extra = rng.choice(others, size=min(others.size, max(1, round(dominant.size / 3))), replace=False)
            out.append(rng.permutation(np.concatenate([dominant, extra])))
    return out


def _machine() -> dict:
    import datetime
    import os
    import platform

    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
                       f"Python {platform.python_version()}",
            "load_average": round(os.getloadavg()[0], 1)}


def run(args) -> dict:
    t_start = time.perf_counter()
    meta = _machine()
    roots = [Path(d).resolve() for d in args.data]
    found = corp.discover(roots, corp.resolve_emotions(None))
    clips = found.clips
    hp = Hyperparameters()
    groups = np.array([c.speaker for c in clips])
    rank = evaluate.arrival_rank(groups, args.seed)  # each clip's position in its speaker's session
    # clean and test conditions: each speaker's clips cut as one source in arrival order (the segmenter's VAD
    # gain follows the clips before); augmented training copies: each clip heard alone
    X = _features(clips, roots, args, rank=rank)
    info = dataset.feature_info(args.extractor)
    aug = [_features(clips, roots, args, c, f"augmented copy {c.copy + 1}")
           for c in augment.training_copies(args.augment, args.seed)]
    conditions = augment.test_conditions()
    Xc = {name: _features(clips, roots, args, c, name, rank) for name, c in conditions.items()}
    t_feat = time.perf_counter() - t_start

    y = np.array([c.label for c in clips])
    corpus = np.array([c.corpus for c in clips])
    names = sorted(set(corpus))
    sn = adaptation(args, groups, rank)

    # ---- grouped CV, every condition predicted by the same fold models
    t0 = time.perf_counter()
    pred = {k: np.empty(len(y), dtype=object) for k in ["clean", *Xc]}
    changes = {k: np.empty(len(y), dtype=object)
               for k in ("unadapted", "two speakers per source", "after another speaker's session")} if sn else {}
    unbalanced: dict[str, list] = {"true": [], "corpus": []}  # clips scored once per session they are in
    ub_pred: dict[str, list] = {}  # per way of scoring (the recipe's; with the centroid offset each head alone too)
    heads = {k: np.empty(len(y), dtype=object) for k in _heads(sn)}
    proba = None
    splits = evaluate.grouped_splits(y, groups, args.folds, args.seed)
    fold_models = []
    for k, fold in enumerate(evaluate.fit_folds(X, y, splits, hp, args.seed, augmented=aug, sn=sn)):
        te = fold.test
        p = fold.proba(X)
        if proba is None:
            proba = np.zeros((len(y), p.shape[1]))
            classes = list(fold.classes_)
        proba[te] = p
        pred["clean"][te] = _labels(fold, p)
        for name, Xn in Xc.items():
            pred[name][te] = fold.predict(Xn)
        if sn is not None:
            changes["unadapted"][te] = _labels(fold, fold.alone_proba(X[te]))
            for session in _mixed_sessions(groups, corpus, te, args.seed + k):
                changes["two speakers per source"][session] = _labels(fold, fold.session_proba(X[session]))
            for first, second in _switch_sessions(groups, corpus, te, rank, args.seed + k):
                both = _labels(fold, fold.session_proba(X[np.concatenate([first, second])]))
                changes["after another speaker's session"][second] = both[first.size:]
        variants = {"": fold, **{name: _head_alone(fold, name) for name in heads}}
        for name in heads:
            heads[name][te] = variants[name].predict(X)
        for session in _unbalanced_sessions(groups, y, te, args.seed + k):
            unbalanced["true"] += list(y[session])
            unbalanced["corpus"] += list(corpus[session])
            for name, f in variants.items():
                ub_pred.setdefault(name, []).extend(_labels(f, f.session_proba(X[session])))
        fold_models.append(fold)
        print(f"fold {k + 1}/{len(splits)} done", file=sys.stderr, flush=True)
    y_idx = np.array([classes.index(v) for v in y])
    result: dict = {"recipe": {"augment": args.augment, "hyperparameters": hp.asdict(), "folds": args.folds,
                               "seed": args.seed, "input": info["input"], "feature_version": info["feature_version"],
                               "feature_params": {k: v for k, v in info["feature_params"].items() if k != "names"},
                               **({"encoder": {k: v for k, v in info["encoder"].items() if k != "file"}}
                                  if "encoder" in info else {}),
                               "speaker_norm": args.speaker_norm,
                               **({"norm_prior": args.norm_prior, "norm_memory": args.norm_memory}
                                  if args.speaker_norm == "causal" else {}),
                               **({"shrink_clips": args.shrink_clips, "combine": args.combine}
                                  if args.speaker_norm == "centroid" else {})},
                    "cv": {}, "by_position": {}, "robustness": {}, "cross_corpus": {}, "calibration": {}}
    if sn is not None:
        result["speaker_changes"] = {}
    result["unbalanced"] = {}
    if heads:
        result["heads"] = {}
    ub_true, ub_corpus = np.array(unbalanced["true"]), np.array(unbalanced["corpus"])
    positions = {"1-5": rank < 5, "6-20": (rank >= 5) & (rank < 20), "21+": rank >= 20}
    for c in names:
        m = corpus == c
        labels = sorted(set(y[m]))
        result["cv"][c] = evaluate.metrics(y[m], pred["clean"][m].astype(str), labels)
        result["calibration"][c] = {"ece": evaluate.expected_calibration_error(proba[m], y_idx[m])}
        result["by_position"][c] = {k: evaluate.uar(y[m & b], pred["clean"][m & b], labels)
                                    for k, b in positions.items()}
        for name in Xc:
            u = evaluate.uar(y[m], pred[name][m], labels)
            result["robustness"].setdefault(name, {})[c] = {"uar": u, "cost": result["cv"][c]["uar"] - u}
        ub = ub_corpus == c
        u = evaluate.uar(ub_true[ub], np.array(ub_pred[""])[ub], labels)
        result["unbalanced"][c] = {"uar": u, "cost": result["cv"][c]["uar"] - u}
        for name, hp_pred in heads.items():
            result["heads"].setdefault(name, {})[c] = {
                "cv": evaluate.uar(y[m], hp_pred[m], labels),
                "unbalanced": evaluate.uar(ub_true[ub], np.array(ub_pred[name])[ub], labels)}
        for name, pc in changes.items():
            result["speaker_changes"].setdefault(name, {})[c] = evaluate.uar(y[m], pc[m], labels)
    t = evaluate.fit_temperature(proba, y_idx)
    soft = evaluate._soften(proba, t)
    for c in names:
        m = corpus == c
        result["calibration"][c]["ece_after_temperature"] = evaluate.expected_calibration_error(soft[m], y_idx[m])
    result["calibration"]["all"] = {"ece": evaluate.expected_calibration_error(proba, y_idx),
                                    "ece_after_temperature": evaluate.expected_calibration_error(soft, y_idx),
                                    "temperature": t}
    t_cv = time.perf_counter() - t0

    # ---- new texts: CV where the held-out sentence was never heard in training either
    t0 = time.perf_counter()
    new_text = evaluate.new_text_predictions(X, y, groups, corpus, [corp.sentence(c) for c in clips], hp,
                                             folds=args.folds, seed=args.seed, augmented=aug, sn=sn)
    result["new_text"] = {}
    for c in names:
        m = (corpus == c) & (new_text != None)  # noqa: E711 - elementwise
        if m.any():
            result["new_text"][c] = evaluate.uar(y[m], new_text[m], sorted(set(y[corpus == c])))
    t_new_text = time.perf_counter() - t0

    # ---- cross-corpus
    t0 = time.perf_counter()
    result["cross_corpus"] = evaluate.cross_corpus_seeds(X, y, groups, corpus, hp, augmented=aug, sn=sn,
                                                         seeds=evaluate.head_seeds(args.seed, args.head_seeds, hp.members))
    t_xc = time.perf_counter() - t0

    # ---- stream vs clip (every fold)
    t0 = time.perf_counter()
    result["stream"] = _stream_vs_clips(fold_models, clips, X, Xc["floor -60 dBFS"], y, corpus, groups, rank, args)
    t_stream = time.perf_counter() - t0
    result["run"] = meta
    result["timing_s"] = {"features": round(t_feat), "cv": round(t_cv), "new_text": round(t_new_text), "cross_corpus": round(t_xc),
                          "stream": round(t_stream), "total": round(time.perf_counter() - t_start)}
    return result


def _input(rec: dict) -> str:
    """The recipe's input in words."""
    enc = rec.get("encoder")
    hand = f"handcrafted features version {rec['feature_version']}"
    if not enc:
        return hand
    blocks = enc.get("blocks", [enc.get("block")])
    per = encoders.members(enc["name"], blocks)
    sep = ", " if len(per) == 1 else " "  # one encoder: "encoder NAME, blocks 1+2"
    named = " and ".join(f"{n}{sep}block{'s' if len(b) > 1 else ''} {'+'.join(map(str, b))}" for n, b in per)
    words = f"encoder{'s' if len(per) > 1 else ''} {named}, frame {enc['pooling']}"
    return words + (f" joined with the {hand}" if "handcrafted" in rec.get("input", "") else "")


def _adaptation(rec: dict) -> str:
    """The recipe's speaker adaptation in words."""
    if rec.get("speaker_norm") == "causal":
        return (f"causal (running mean per speaker, prior {rec['norm_prior']:g} clips, "
                + (f"memory {rec['norm_memory']:g} clips, " if rec.get("norm_memory") else "never forgets, ")
                + "mean from the training folds only)")
    if rec.get("speaker_norm") == "centroid":
        return (f"centroid offset (per speaker, causal, shrink {rec['shrink_clips']:g} clips, heads combined by "
                f"{rec['combine']}, centroids from the training folds only)")
    return "none"


def cross_uar(m: dict) -> float:
    """A cross-corpus test's UAR as judged: the mean over the head's seeds where it was repeated, else its one UAR."""
    return m.get("uar_mean", m["uar"])


def _head_seeds(r: dict) -> list[str]:
    """The head seeds an evaluation's cross-corpus tests were repeated with (empty: one head, of the split seed)."""
    return list(next(iter(r["cross_corpus"].values()), {}).get("uar_by_head_seed", {}))


def _seeds_note(m: dict) -> str:
    """Which heads a cross-corpus figure is of, for its row: the seeds' count and range (UAR %) if several."""
    runs = [100 * u for u in m.get("uar_by_head_seed", {}).values()]
    return f", mean of {len(runs)} head seeds ({min(runs):.1f}-{max(runs):.1f})" if len(runs) > 1 else ""


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def render(r: dict) -> str:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    rec = r["recipe"]
    lines = [
        "# ser-live evaluation",
        "",
        f"Input: {_input(rec)}; MLP {rec['hyperparameters']['hidden']} alpha "
        f"{rec['hyperparameters']['alpha']}, augmentation copies {rec['augment']}, speaker normalisation "
        + _adaptation(rec)
        + f", {rec['folds']}-fold CV grouped by speaker (seed {rec['seed']}). Produced by `{r['command']}`.",
        "",
        "| target | measured | goal | |",
        "|---|---:|---:|---|",
    ]
    cv = r["cv"]
    for c, goal in (("ravdess", TARGETS["cv_ravdess"]), ("crema-d", TARGETS["cv_crema-d"])):
        if c in cv:
            lines.append(f"| CV UAR {c} ({len(cv[c]['labels'])} classes) | {pct(cv[c]['uar'])} | ≥ {pct(goal)} | "
                         f"{_ok(cv[c]['uar'] >= goal)} |")
    for c, u in r.get("new_text", {}).items():
        lines.append(f"| CV UAR {c}, sentences never heard in training either (see below) | {pct(u)} | "
                     f"≥ {pct(TARGETS['new_text'])} | {_ok(u >= TARGETS['new_text'])} |")
    for c, v in r.get("unbalanced", {}).items():
        lines.append(f"| unbalanced sessions, {c}: UAR {pct(v['uar'])}, cost against balanced (points) | {pct(v['cost'])} | "
                     f"≤ {pct(TARGETS['unbalanced_cost'])} | {_ok(v['cost'] <= TARGETS['unbalanced_cost'])} |")
    for k, v in r["cross_corpus"].items():
        u = cross_uar(v)
        lines.append(f"| cross-corpus UAR {k} ({len(v['labels'])} classes){_seeds_note(v)} | {pct(u)} | "
                     f"≥ {pct(TARGETS['cross'])} | {_ok(u >= TARGETS['cross'])} |")
    for name, per in r["robustness"].items():
        for c, v in per.items():
            key = CONDITION_TARGETS.get(name)
            goal = f"≤ {pct(TARGETS[key])}" if key else "(no target)"
            verdict = _ok(v["cost"] <= TARGETS[key]) if key else ""
            lines.append(f"| {name}, {c}: UAR {pct(v['uar'])}, cost (points) | {pct(v['cost'])} | {goal} | {verdict} |")
    s = r["stream"]
    for c, v in s["per_corpus"].items():
        lines.append(f"| stream vs clip, {c} ({v['clips']} held-out clips of {s['folds']} folds, floor {s['floor_dbfs']:g} "
                     f"dBFS): clip UAR {pct(v['uar_clips'])}, stream UAR {pct(v['uar_stream'])}, gap (points) | "
                     f"{pct(v['gap'])} | ≤ {pct(TARGETS['stream_gap'])} | {_ok(v['gap'] <= TARGETS['stream_gap'])} |")
    ece = r["calibration"]["all"]["ece_after_temperature"]
    lines.append(f"| calibration: expected calibration error after the temperature (%) | {pct(ece)} | "
                 f"≤ {pct(TARGETS['ece'])} | {_ok(ece <= TARGETS['ece'])} |")
    lines += [
        "",
        *([
            "Sentences never heard: both corpora repeat a few fixed sentences (RAVDESS 2, CREMA-D 12), so the CV rows test "
            "new voices saying known texts. In the 'sentences never heard' rows each held-out clip is scored by a model "
            "trained on the same fold's speakers minus every clip of its sentence (a corpus's sentences dealt into up to "
            "three groups, one model per fold and group; RAVDESS trains on one statement and is tested on the other). "
            "Those models also train on less data (a half or two thirds), so part of the drop is that.",
            "",
        ] if r.get("new_text") else []),
        *([
            "Unbalanced sessions: each held-out speaker is heard in sessions where one emotion dominates (all of the "
            "speaker's clips of that emotion, about three quarters of the session, plus a third as many of its other "
            "clips, in a seeded order), one session per emotion, scored by the same fold models with the same speaker "
            "adaptation as the CV rows; the cost is the CV UAR minus the UAR over these sessions"
            + (" (UAR " + ("with no adaptation at all, every clip normalised" if r["recipe"].get("speaker_norm") == "causal"
                           else "with every clip heard") + " as the first of its source: "
               + ", ".join(f"{c} {pct(u)}" for c, u in r["speaker_changes"]["unadapted"].items())
               + ")" if "speaker_changes" in r else "; a model without speaker adaptation scores every clip alone, so "
               "the order and make-up of a session cannot change its result")
            + ".",
            "",
        ] if r.get("unbalanced") else []),
        *([
            "Each head alone (the same fold models; CV UAR balanced / unbalanced sessions; the unadapted head is the "
            "recipe without adaptation): "
            + "; ".join(f"{name}: " + ", ".join(f"{c} {pct(v['cv'])} / {pct(v['unbalanced'])}" for c, v in per.items())
                        for name, per in r["heads"].items()) + ".",
            "",
        ] if r.get("heads") else []),
        "Robustness costs are clean CV UAR minus UAR on the same held-out clips corrupted before the runtime's cut, "
        "scored by the same fold models. The stream rows replay each fold's held-out clips through the live pipeline "
        "with that fold's model and compare with the same model on the same clips one by one.",
        "",
        f"Stream: {s['utterances']} utterances found for {s['clips']} clips, {s['missed']} clips missed, "
        f"{s['audio_s']} s of audio replayed in {s['replay_s']} s; stream and clip labels agree on "
        f"{pct(s['agreement_stream_vs_clips'])}% of clips; clip-by-clip with a -60 dBFS floor: UAR "
        + " / ".join(f"{c} {pct(v['uar_clips_floor60'])}" for c, v in s["per_corpus"].items()) + ".",
        "",
        "CV UAR by the clip's position in its speaker's session (clips 1-5 / 6-20 / 21+; the same clips whatever "
        "the normalisation): " + "; ".join(f"{c} " + " / ".join(pct(v) for v in r["by_position"][c].values())
                                           for c in r["by_position"]) + ".",
        "",
        *([
            "Speaker changes within a source (CV UAR of the same held-out clips, one speaker per source as in the "
            "table -> " + ", ".join(r["speaker_changes"]) + "): "
            + "; ".join(f"{c} {pct(cv[c]['uar'])} -> " + " / ".join(pct(v[c]) for v in r["speaker_changes"].values())
                        for c in cv) + ".",
            "",
        ] if "speaker_changes" in r else []),
        "Calibration (expected calibration error of the top-class probability, 10 bins, pooled CV; raw MLP -> "
        f"after the temperature T = {r['calibration']['all']['temperature']:g} that ser-train fits on these out-of-fold "
        "probabilities and bakes into the shipped model): "
        + ", ".join(f"{k} {pct(v['ece'])}% -> {pct(v['ece_after_temperature'])}%" for k, v in r["calibration"].items()) + ".",
        "",
        "Per-class recall (CV): "
        + "; ".join(f"{c}: " + ", ".join(f"{l} {pct(v)}" for l, v in cv[c]["recall"].items()) for c in cv) + ".",
        "",
        "Per-class recall across corpora (trained on one, tested on the other"
        + (f"; the head of seed {_head_seeds(r)[0]}" if len(_head_seeds(r)) > 1 else "") + "): "
        + "; ".join(f"{pair}: " + ", ".join(f"{l} {pct(v)}" for l, v in m["recall"].items())
                    for pair, m in r["cross_corpus"].items()) + ".",
        "",
        f"Run {r['run']['date']} on {r['run']['machine']} (load average {r['run']['load_average']:g} at the start). "
        f"Time (s): {r['timing_s']}; features are cached between runs.",
        "",
        "What each part of the recipe adds (feature floor, augmentation, noise types, speaker normalisation, "
        "feature groups): [ablation.md](ablation.md).",
        "",
    ]
    return "\n".join(lines)


def rows(r: dict) -> dict[str, tuple[float, str]]:
    """The evaluation's figures by name, each (value in %, the target it is held to or "")."""
    pct = lambda v: 100 * v  # noqa: E731
    out: dict[str, tuple[float, str]] = {}
    goal = {"ravdess": TARGETS["cv_ravdess"], "crema-d": TARGETS["cv_crema-d"]}
    for c, m in r["cv"].items():
        out[f"CV UAR, {c} ({len(m['labels'])} classes)"] = (pct(m["uar"]), f"≥ {pct(goal.get(c, 0)):.0f}")
    for c, u in r.get("new_text", {}).items():
        out[f"sentences never heard, {c}"] = (pct(u), f"≥ {pct(TARGETS['new_text']):.0f}")
    for k, v in r["cross_corpus"].items():
        out[f"cross-corpus {k.replace('->', ' → ')}"] = (pct(cross_uar(v)), f"≥ {pct(TARGETS['cross']):.0f}")
    for c, v in r.get("unbalanced", {}).items():
        out[f"unbalanced sessions, {c}: cost"] = (pct(v["cost"]), f"≤ {pct(TARGETS['unbalanced_cost']):.0f}")
    for name, per in r["robustness"].items():
        for c, v in per.items():
            key = CONDITION_TARGETS.get(name)
            out[f"{name}, {c}: cost"] = (pct(v["cost"]), f"≤ {pct(TARGETS[key]):.0f}" if key else "")
    for c, v in r["stream"]["per_corpus"].items():
        out[f"stream vs clip, {c}: gap"] = (pct(v["gap"]), f"≤ {pct(TARGETS['stream_gap']):.0f}")
    out["calibration error after the temperature (%)"] = (pct(r["calibration"]["all"]["ece_after_temperature"]),
                                                          f"≤ {pct(TARGETS['ece']):.0f}")
    for c, m in r["cv"].items():
        for label, v in m["recall"].items():
            out[f"recall {label}, {c}"] = (pct(v), "")
    return out


def render_side_by_side(results: list[dict]) -> str:
    """One table of the figures of several evaluations (models or split seeds), a column each."""
    tables = [rows(r) for r in results]
    names = list(dict.fromkeys(k for t in tables for k in t))
    heads = [f"{_input(r['recipe'])}, speaker adaptation {r['recipe'].get('speaker_norm', 'none')}"
             + (f" (shrink {r['recipe']['shrink_clips']:g} clips)" if r["recipe"].get("speaker_norm") == "centroid" else "")
             + f", split seed {r['recipe']['seed']}" for r in results]
    lines = ["# ser-live models side by side", "",
             "Each column is one `ser-evaluate` run (speaker-independent, the same speakers, folds and test "
             "conditions); UAR and costs in %, costs in points against the clean clips. Produced by "
             f"`{' ; '.join(r['command'] for r in results)}` and rendered by `ser-evaluate --side-by-side`.", "",
             "| figure | target | " + " | ".join(f"({i + 1})" for i in range(len(results))) + " |",
             "|---|---|" + "---:|" * len(results)]
    for name in names:
        target = next((t[name][1] for t in tables if name in t), "")
        cells = [f"{t[name][0]:.1f}" if name in t else "" for t in tables]
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")
    lines += [""] + [f"({i + 1}) {h}; run {r['run']['date']} on {r['run']['machine']}"
                     + (f"; cross-corpus: the mean of {len(_head_seeds(r))} head seeds" if len(_head_seeds(r)) > 1 else "")
                     + "."
                     for i, (h, r) in enumerate(zip(heads, results))] + [""]
    return "\n".join(lines)


def _command(parser: OneLineParser, args) -> str:
    """The command line that reproduces this run: the data and output, and every option not at its default
    (``--jobs`` and ``--cache-dir`` change nothing in the figures)."""
    words = ["ser-evaluate", "--data", *map(str, args.data), "--out", str(args.out)]
    for action in parser._actions:
        dest = action.dest
        if dest in ("help", "version", "data", "out", "jobs", "cache_dir") or getattr(args, dest) == action.default:
            continue
        value = getattr(args, dest)
        if dest == "encoder_blocks":
            value = format_blocks(value)
        words += [action.option_strings[0], ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return shlex.join(words)


DEFAULT_OUT = Path("evaluation/evaluation")
#: how many seeds of the head each cross-corpus test is repeated with (the split seed first, then spaced by the
#: member count, no member shared)
HEAD_SEEDS = 5


def _parser() -> OneLineParser:
    p = OneLineParser(prog="ser-evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", type=Path, help="corpus folders (every evaluation needs them)")
    p.add_argument("--side-by-side", nargs="+", type=Path, metavar="JSON",
                   help="instead of evaluating: render these evaluations' JSON files as one table into OUT.md")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"writes OUT.json and OUT.md (default {DEFAULT_OUT}, under the current folder; the shipped "
                   "reports are reports/evaluation*, rewritten only when named here)")
    p.add_argument("--augment", type=int, default=recipe.AUGMENT)
    p.add_argument("--encoder", default=recipe.ENCODER, help="as ser-train's --encoder")
    p.add_argument("--encoder-blocks", "--encoder-block", type=parse_blocks, default=recipe.ENCODER_BLOCKS,
                   metavar="N[,N...]", help="as ser-train's --encoder-blocks")
    p.add_argument("--with-features", action="store_true", help="as ser-train's --with-features")
    p.add_argument("--speaker-norm", choices=SPEAKER_NORMS, default=recipe.SPEAKER_NORM)
    p.add_argument("--shrink-clips", type=float, default=recipe.CENTROID_SHRINK, help="as ser-train's --shrink-clips")
    p.add_argument("--combine", choices=COMBINES, default=recipe.CENTROID_COMBINE, help="as ser-train's --combine")
    p.add_argument("--norm-prior", type=float, default=recipe.NORM_PRIOR)
    p.add_argument("--norm-memory", type=float, default=recipe.NORM_MEMORY, help="0 = never forgets")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--head-seeds", type=positive_int, default=HEAD_SEEDS,
                   help=f"cross-corpus tests repeated with this many seeds of the head, their mean judged (default "
                   f"{HEAD_SEEDS}; one head's figure moves by a few points with its seed alone)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/features"))
    p.add_argument("--stream-clips", type=int, default=0, help="held-out clips streamed per fold (0 = all)")
    p.add_argument("--stream-floor", type=float, default=-60.0)
    return p


def _data_problem(folders: list[Path], folds: int) -> str | None:
    """Why the corpus folders cannot be evaluated (one line), or None."""
    for folder in folders:
        if not folder.is_dir():
            return f"{folder}: no such folder (--data takes the corpus folders, e.g. ravdess and crema-d)"
    found = corp.discover([f.resolve() for f in folders], corp.resolve_emotions(None))
    if not found.clips:
        return f"no RAVDESS or CREMA-D clips found in {', '.join(map(str, folders))}"
    speakers = len({c.speaker for c in found.clips})
    if speakers < folds:
        return f"{speakers} speaker(s) found, fewer than the {folds} folds (--folds)"
    return None


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.side_by_side:
        try:
            results = [json.loads(f.read_text()) for f in args.side_by_side]
        except (OSError, ValueError) as e:
            print(f"ser-evaluate: cannot read an evaluation: {e}", file=sys.stderr)
            return 2
        md = render_side_by_side(results)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        export.write_atomic(args.out.with_suffix(".md"), md.encode())
        print(md)
        return 0
    if not args.data:
        p.error("--data is required")
    if args.folds < 2:
        p.error(f"--folds must be at least 2, got {args.folds}")
    problem = _data_problem(args.data, args.folds)
    if problem is not None:
        print(f"ser-evaluate: {problem}", file=sys.stderr)
        return 2
    try:
        args.extractor = make_extractor(args.encoder, args.encoder_blocks, args.with_features, args.cache_dir)
    except TrainError as e:
        print(f"ser-evaluate: {e}", file=sys.stderr)
        return 2
    result = run(args)
    result["command"] = _command(p, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export.write_atomic(args.out.with_suffix(".json"), export.dumps(result))
    md = render(result)
    export.write_atomic(args.out.with_suffix(".md"), md.encode())
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
