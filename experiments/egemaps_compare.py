"""Does openSMILE's eGeMAPSv02 (88 functionals) beat our features (``ser_live.features``), alone or
concatenated with them? (The answer, in reports/ablation.md: no.)

    pip install opensmile   # not a dependency of ser-live: this comparison only
    taskset -c 1 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python -m experiments.egemaps_compare --data ../shared/data/ravdess ../shared/data/crema-d \\
        --sets ours egemaps both --sn none --sn causal --test floor60 gain-20 --groups [--timing]

Same clips (``ser_live.train.corpora.discover``), same cut (the runtime's ``speech_span``; whole clip when it
finds nothing, as ``ser_live.train.dataset`` does), same folds and classifier as ``experiments.ablation``
(``evaluate.fit_folds``: 5 speaker-grouped folds, seed 0, default ``Hyperparameters``), no augmentation.
``--sn causal`` is the ablation's ``SN=causal`` (prior ``recipe.NORM_PRIOR``, mean of each model's training
side). Our features come from ``ser_live.train.dataset.build_features`` (its .npz cache); eGeMAPS vectors
are cached as .npy + .json under ``--cache-dir`` (no pickle), keyed by opensmile version, segmenter config
and the clip list.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from experiments.ablation import emit
from ser_live.arguments import OneLineParser


def _smile():
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


def egemaps_features(clips, cache_dir: Path, corruption=None, level_norm: bool = False) -> tuple[np.ndarray, list[str]]:
    """(n, 88) eGeMAPSv02 functionals of each clip's ``speech_span`` cut, cached; ``corruption`` (a
    ``ser_live.train.augment.Corruption`` without babble) is applied to the raw clip before the cut;
    ``level_norm`` scales each cut to -23 dBFS RMS first (removes the absolute level from eGeMAPS)."""
    import opensmile

    from ser_live.segmenter import speech_span
    from ser_live.train import dataset

    config = dataset.segmenter_config()
    stats = [(str(c.path), c.path.stat().st_size, c.path.stat().st_mtime_ns) for c in clips]
    key = hashlib.sha256(json.dumps({"opensmile": opensmile.__version__, "seg": dataset.config_dict(config),
                                     "clips": stats,
                                     "corruption": corruption.to_dict() if corruption else None,
                                     **({"level_norm": -23.0} if level_norm else {})}, default=str, sort_keys=True).encode()).hexdigest()[:16]
    tag = (f"-{corruption.name}" if corruption else "") + ("-ln" if level_norm else "")
    npy, meta = cache_dir / f"egemaps{tag}-{key}.npy", cache_dir / f"egemaps{tag}-{key}.json"
    if npy.exists() and meta.exists():
        return np.load(npy, allow_pickle=False), json.loads(meta.read_text())["names"]
    smile = _smile()
    rows, no_speech, t0 = [], 0, time.perf_counter()
    for i, c in enumerate(clips):
        audio = dataset.load_audio(c.path)
        if corruption is not None:
            audio = corruption.apply(audio, c.path.name)
        span = speech_span(audio, config)
        if span is None or span.size == 0:
            span, no_speech = audio, no_speech + 1
        if level_norm:
            span = (span * (10 ** (-23 / 20) / max(float(np.sqrt(np.mean(span.astype(np.float64) ** 2))), 1e-9))).astype(np.float32)
        rows.append(smile.process_signal(span, dataset.SAMPLE_RATE).to_numpy(np.float32)[0])
        if (i + 1) % 500 == 0:
            print(f"  egemaps {i + 1}/{len(clips)} {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    X = np.stack(rows)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(npy, X, allow_pickle=False)
    meta.write_text(json.dumps({"names": list(smile.feature_names), "paths": [s[0] for s in stats],
                                "no_speech": no_speech, "nonfinite_rows": int((~np.isfinite(X).all(1)).sum()),
                                "opensmile": opensmile.__version__}))
    return X, list(smile.feature_names)


def evaluate_set(X, y, g, co, sn_name: str, seed: int = 0, held_out: dict | None = None) -> dict:
    """``experiments.ablation.run_variant``'s evaluation without augmentation: per-corpus UAR (%) of pooled
    5-fold speaker-grouped CV, and cross-corpus UAR both ways on the shared classes; ``held_out``
    (condition -> the same clips corrupted) also scores the models on those held-out rows."""
    from ser_live.train import evaluate, recipe
    from ser_live.train.model import Hyperparameters

    sn = None
    if sn_name == "causal":
        sn = evaluate.SessionNorm(float(recipe.NORM_PRIOR), g, evaluate.arrival_rank(g, seed))
    hp = Hyperparameters()
    tests = {"": X, **{f"_{k}": v for k, v in (held_out or {}).items()}}
    res: dict = {}
    pred = {k: np.empty(len(y), object) for k in tests}
    for fold in evaluate.fit_folds(X, y, evaluate.grouped_splits(y, g, 5, seed), hp, seed, sn=sn):
        for k, A in tests.items():
            pred[k][fold.test] = fold.predict(A)
    for k, p in pred.items():
        for c, u in evaluate.uar_by_corpus(y, p, co).items():
            res[f"cv_{c}{k}"] = round(100 * u, 1)
    for a, b in (("ravdess", "crema-d"), ("crema-d", "ravdess")):
        shared = sorted(set(y[co == a]) & set(y[co == b]))
        tr, te = np.flatnonzero((co == a) & np.isin(y, shared)), np.flatnonzero((co == b) & np.isin(y, shared))
        fold = evaluate.fit_fold(X, y, tr, te, hp, seed, sn=sn)
        for k, A in tests.items():
            res[f"x_{a}->{b}{k}"] = round(100 * evaluate.uar(y[te], fold.predict(A), shared), 1)
    return res


GROUPS = {  # eGeMAPSv02 functionals by descriptor
    "F0": lambda n: n.startswith("F0"),
    "loudness": lambda n: n.startswith("loudness") or n.startswith("equivalentSoundLevel"),
    "jitter_shimmer_HNR": lambda n: n.split("_")[0] in ("jitterLocal", "shimmerLocaldB", "HNRdBACF"),
    "formants": lambda n: n.startswith(("F1", "F2", "F3")),
    "spectral_balance": lambda n: n.startswith(("alphaRatio", "hammarberg", "slope", "logRelF0")),
    "mfcc_flux": lambda n: n.startswith(("mfcc", "spectralFlux")),
    "temporal": lambda n: n.startswith(("VoicedSegments", "MeanVoicedSegment", "StddevVoicedSegment",
                                        "MeanUnvoicedSegment", "StddevUnvoicedSegment")),
}


def timing(clips, n: int = 100) -> dict:
    """Median / p95 extraction time (ms) on 3.0 s of real audio (first 3 s of clips at least that long),
    ours vs eGeMAPS, single thread, after warm-up; and the import times (fresh interpreters)."""
    import subprocess

    from ser_live import features as F
    from ser_live.train import dataset

    rng = np.random.default_rng(0)
    pool = [clips[i] for i in rng.permutation(len(clips))]
    audios = []
    for c in pool:
        a = dataset.load_audio(c.path)
        if a.size >= 48000:
            audios.append(a[:48000].copy())
        if len(audios) == n:
            break
    smile = _smile()
    for a in audios[:5]:
        F.extract(a), smile.process_signal(a, F.SAMPLE_RATE)
    out = {"clips": len(audios)}
    for name, fn in (("ours", F.extract), ("egemaps", lambda a: smile.process_signal(a, F.SAMPLE_RATE))):
        ts = []
        for a in audios:
            t0 = time.perf_counter()
            fn(a)
            ts.append((time.perf_counter() - t0) * 1e3)
        out[f"{name}_ms_median"], out[f"{name}_ms_p95"] = round(float(np.median(ts)), 2), round(float(np.percentile(ts, 95)), 2)
    imports = {}
    for name, stmt in (("python", "pass"), ("ser_live.features", "import ser_live.features"),
                       ("opensmile", "import opensmile"),
                       ("opensmile+Smile()", "import opensmile; opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)")):
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", stmt], check=True)
            ts.append(time.perf_counter() - t0)
        imports[name] = round(float(np.median(ts)) * 1e3)
    out["import_ms_median_of_5_incl_interpreter"] = imports
    return out


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m experiments.egemaps_compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", type=Path, required=True)
    p.add_argument("--sets", nargs="*", default=["ours", "egemaps", "both"], choices=["ours", "egemaps", "both"])
    p.add_argument("--sn", action="append", choices=["none", "causal"])
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/smile-cache"))
    p.add_argument("--out", type=Path, default=Path("/tmp/smile-cache/results.jsonl"))
    p.add_argument("--timing", action="store_true")
    p.add_argument("--level-norm", action="store_true",
                   help="also eGeMAPS of cuts scaled to -23 dBFS RMS (sets egemaps_ln, both_ln)")
    p.add_argument("--seed", type=int, default=0, help="split and MLP seed (0 = the ablation's)")
    p.add_argument("--test", nargs="*", default=[], choices=["floor60", "gain-20", "gain+20", "white15", "telephone"],
                   help="also score the held-out clips under these test conditions (ser_live.train.augment.test_conditions)")
    p.add_argument("--groups", nargs="*", choices=list(GROUPS),
                   help="also ours + each of these eGeMAPS descriptor groups (all if none named)")
    args = p.parse_args(argv)

    from ser_live.train import corpora as corp, dataset

    roots = [d.resolve() for d in args.data]
    clips = corp.discover(roots, corp.resolve_emotions(None)).clips
    fs = dataset.build_features(clips, roots=roots, cache_dir=args.cache_dir / "ours", jobs=1)
    assert len(fs.clips) == len(clips), fs.failed[:3]
    E, names = egemaps_features(clips, args.cache_dir)
    bad = ~np.isfinite(E)
    if bad.any():  # none expected; reported, then set to the column median
        print(f"eGeMAPS non-finite values: {int(bad.sum())} in {int(bad.any(1).sum())} rows", file=sys.stderr)
        E = np.where(bad, np.nanmedian(np.where(bad, np.nan, E), axis=0), E).astype(np.float32)
    y = np.array([c.label for c in clips])
    g = np.array([c.speaker for c in clips])
    co = np.array([c.corpus for c in clips])
    sets = {"ours": fs.X, "egemaps": E, "both": np.hstack([fs.X, E])}
    from ser_live.train import augment

    conds = {c.name: c for c in augment.test_conditions().values()}
    tests: dict[str, dict[str, np.ndarray]] = {}  # condition -> set -> held-out rows
    for t in args.test:
        fn = dataset.build_features(clips, roots=roots, cache_dir=args.cache_dir / "ours", jobs=1, corruption=conds[t])
        assert len(fn.clips) == len(clips)
        En = egemaps_features(clips, args.cache_dir, conds[t])[0]
        assert np.isfinite(En).all()
        tests[t] = {"ours": fn.X, "egemaps": En, "both": np.hstack([fn.X, En])}
        if args.level_norm:
            Ln = egemaps_features(clips, args.cache_dir, conds[t], level_norm=True)[0]
            tests[t].update(egemaps_ln=Ln, both_ln=np.hstack([fn.X, Ln]))
    if args.level_norm:
        L = egemaps_features(clips, args.cache_dir, level_norm=True)[0]
        sets.update(egemaps_ln=L, both_ln=np.hstack([fs.X, L]))
        args.sets = list(args.sets) + ["egemaps_ln", "both_ln"]
    for grp in (args.groups if args.groups else GROUPS) if args.groups is not None else ():
        cols = [i for i, n in enumerate(names) if GROUPS[grp](n)]
        sets[f"ours+{grp}({len(cols)})"] = np.hstack([fs.X, E[:, cols]])
        for t in tests.values():
            t[f"ours+{grp}({len(cols)})"] = np.hstack([t["ours"], t["egemaps"][:, cols]])
    print(json.dumps({"clips": len(clips), "ours_cached": fs.cached, "ours_dim": fs.X.shape[1],
                      "egemaps_dim": E.shape[1]}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for sn in args.sn or ["none"]:
        for s in list(args.sets) + [k for k in sets if k.startswith("ours+")]:
            t0 = time.perf_counter()
            res = {"set": s, "dim": sets[s].shape[1], "sn": sn, "seed": args.seed,
                   **evaluate_set(sets[s], y, g, co, sn, args.seed,
                                   {t: v[s] for t, v in tests.items()})}
            res["seconds"] = round(time.perf_counter() - t0)
            emit(res, args.out)
    if args.timing:
        emit({"timing": timing(clips)}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
