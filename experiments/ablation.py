"""Ablation harness: what augmentation, speaker normalisation, the segmenter's VAD gain, the band and
feature groups each add to speaker-independent accuracy (reports/ablation.md).

    python -m experiments.ablation --data ../shared/data/ravdess ../shared/data/crema-d \\
        --variant K=1 --variant K=0 --variant K=1,SN=causal

A variant is comma-separated KEY=VALUE:
  K    augmented copies per training clip (``ser-train --augment``)
  SNR  training-noise SNR range as LO:HI (default that of ``augment.training_copies``)
  TP   probability of the telephone band in the training copies (default that of ``augment.training_copies``)
  RV   probability of a room's reverberation in the training copies (``augment.room_response``, RT60
       0.3-0.8 s, direct-to-reverberant ratio 0-10 dB; default that of ``augment.training_copies``)
  SP   probability of a speed change in the training copies (``augment.change_speed``, a factor of 0.9-1.1:
       tempo, pitch and formants together, as another talker; default that of ``augment.training_copies``)
  CD   probability of the Opus codec in the training copies (``augment.opus``, compression level 0.9-1.0, about
       31-8 kbps on these corpora; default that of ``augment.training_copies``)
  NZ   the training copies' noise types as A:B:..., drawn uniformly per clip (a repeated type weighs more)
  H    hidden sizes as A:B;  AL  L2 alpha, or several as A:B:... to choose one per training set by an inner
       3-fold speaker-grouped CV on its rows (nested: the held-out speakers never take part in the choice)
  SN   speaker normalisation: ``none`` (default);
       ``causal`` = the runtime's normaliser (``realtime/speaker_norm.py``, ``ser-train --speaker-norm
       causal``): subtract the running mean of the speaker's clips so far, in a seeded arrival order,
       shrunk to the training mean with a prior weight of P clips; the mean comes from each model's
       training rows only;
       ``oracle`` = z-score with all of the speaker's clips (an upper bound, not causal, not shippable)
  P    prior weight of ``SN=causal`` in clips (default that of ``ser-train --norm-prior``)
  NM   memory of ``SN=causal``'s running mean in clips (``ser-train --norm-memory``; default: it never forgets,
       while the shipped normaliser remembers about 30 clips)
  DROP feature columns left out, as ``:``-separated shell patterns over ``FEATURE_NAMES`` (e.g.
       ``DROP=mfcc*_mean:logmel*_mean``)
  VG   the segmenter's VAD gain: ``on`` (default, as shipped: clean and test clips of a speaker cut as one
       source in the seeded arrival order, so the gain follows the clips before) or ``off`` (the VAD hears
       every clip as is, each clip alone)
  VF   the VAD gain's background limit in dBFS (``SegmenterConfig.vad_floor_dbfs``): a gain that raises the
       source never lifts its background above this
  CF   ``none`` (default) or ``floor``: the training side's clean rows are the same clips over the
       evaluation's -60 dBFS white floor (the test condition's features), as every live input has a floor;
       held-out rows stay clean (not with ``--new-text``, whose models train on the clean rows)
  BW   the band the features see: ``full`` (default) or ``telephone`` (every cut, training and test, through
       the evaluation's 300-3400 Hz filter before the features: a narrowband model)

The segmenter and the features are the installed ``ser_live``'s, given to ``dataset.build_features`` as a
``SegmenterConfig`` and an ``Extractor``; the feature constants themselves (floor, active and voiced
ranges, edge trim) are not variant keys: they are fixed in ``realtime/features.py``.

For each variant it prints and appends to ``--out`` (JSON lines): 5-fold speaker-grouped CV UAR per
corpus on clean held-out clips, on the same clips over a -60 dBFS white floor and 20 dB quieter, and
cross-corpus UAR both ways (clean and floor). With ``--robustness`` also the CV UAR under the evaluation's
white and babble noise at 15 dB SNR, telephone band, a reverberant room and the Opus codec at about 20 kbps
(``augment.test_conditions``), and
``telephone_cut``: the telephone band applied to each clean cut instead of before the cut (the share of the
telephone cost that the cut does not explain). With ``--new-text`` also ``cv_newtext_<corpus>``: the same
speaker folds, but each held-out clip is scored by a model that never heard its sentence from anyone
(``ser_live.train.evaluate.new_text_predictions``), so a gain that comes from knowing the corpora's few fixed
texts shows. The feature cache key covers the segmenter and what the extractor computes, so variants never
share cached features by mistake.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import sys
import time
from pathlib import Path

import numpy as np

from ser_live.extractor import Extractor
from ser_live.features import FEATURE_NAMES
from ser_live.train import augment, corpora as corp, dataset, evaluate, recipe
from ser_live.train.model import Hyperparameters

KEYS = ("K", "SNR", "TP", "RV", "SP", "CD", "NZ", "H", "AL", "SN", "P", "NM", "DROP", "VG", "VF", "CF", "BW")
CHOICES = {"SN": ("none", "causal", "oracle"), "VG": ("on", "off"), "BW": ("full", "telephone"), "CF": ("none", "floor")}
_COPY_PROBABILITIES = {"TP": "telephone_p", "RV": "reverb_p", "SP": "speed_p", "CD": "codec_p"}  # Corruption fields


def _parse(text: str) -> dict:
    """KEY=VALUE pairs of one variant; an unknown key, a missing value or a value outside a key's choices
    is an error, not a silently mislabelled row."""
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        k, v = k.strip().upper(), v.strip()
        if k not in KEYS:
            raise ValueError(f"unknown key {k!r} in variant {text!r} (known: {', '.join(KEYS)})")
        if not v:
            raise ValueError(f"no value for {k} in variant {text!r}")
        if v not in CHOICES.get(k, (v,)):
            raise ValueError(f"{k}={v} in variant {text!r} is not one of {', '.join(CHOICES[k])}")
        out[k] = v
    return out


def _oracle_norm(A: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Z-score every speaker's rows with all of that speaker's rows (uses the future: a bound only)."""
    A = A.astype(np.float64).copy()
    for s in np.unique(groups):
        idx = np.flatnonzero(groups == s)
        sub = A[idx]
        A[idx] = (sub - sub.mean(0)) / (sub.std(0) + 1e-3 * np.abs(sub).mean(0) + 1e-6)
    return A.astype(np.float32)


class TelephoneBand(Extractor):
    """The handcrafted features of the audio through the evaluation's 300-3400 Hz filter (``augment.telephone``)."""

    def extract(self, audio: np.ndarray) -> np.ndarray:
        return super().extract(augment.telephone(np.asarray(audio, np.float64)))


def run_variant(v: dict, roots: list[Path], cache_dir: Path, jobs: int, seed: int = 0, new_text: bool = False,
                robustness: bool = False) -> dict:
    """One variant's figures (see the module's docstring)."""
    band = v.get("BW", "full")
    extractor = TelephoneBand() if band == "telephone" else Extractor()
    clips = corp.discover(roots, corp.resolve_emotions(None)).clips
    gain = v.get("VG", "on")
    changes = {"vad_floor_dbfs": float(v["VF"])} if "VF" in v else {}
    if gain == "off":
        changes["vad_target_dbfs"] = None
    config = dataclasses.replace(dataset.segmenter_config(), **changes)
    g = np.array([c.speaker for c in clips])
    rank = evaluate.arrival_rank(g, seed)  # each clip's place in its speaker's session: the cut's and the normaliser's
    sessions = rank if gain == "on" else None

    def feats(c=None, rank=None, extractor=extractor):
        fs = dataset.build_features(clips, roots=roots, cache_dir=cache_dir, jobs=jobs, corruption=c, rank=rank,
                                    extractor=extractor, config=config)
        assert len(fs.clips) == len(clips), fs.failed[:1]
        return fs.X

    conditions = augment.test_conditions()
    X = feats(rank=sessions)
    tests = {"floor": feats(conditions["floor -60 dBFS"], sessions), "gain-20": feats(conditions["gain -20 dB"], sessions)}
    if robustness:
        for k, name in (("white15", "white 15 dB"), ("babble15", "babble 15 dB"), ("telephone", "telephone 300-3400 Hz"),
                        ("room", "room RT60 0.6 s, DRR 3 dB"), ("opus", "Opus ~20 kbps")):
            tests[k] = feats(conditions[name], sessions)
        if band == "full":  # the band applied after the clean cut: what is left of the telephone cost without the cut's share
            tests["telephone_cut"] = feats(rank=sessions, extractor=TelephoneBand())
    copies = augment.training_copies(int(v.get("K", 1)), seed)
    if "SNR" in v:
        lo, hi = map(float, v["SNR"].split(":"))
        copies = [dataclasses.replace(c, snr_db=(lo, hi)) for c in copies]
    for key, field in _COPY_PROBABILITIES.items():
        if key in v:
            copies = [dataclasses.replace(c, **{field: float(v[key])}) for c in copies]
    if "NZ" in v:
        copies = [dataclasses.replace(c, noises=tuple(v["NZ"].split(":"))) for c in copies]
    Xa = [feats(c) for c in copies]
    if "DROP" in v:
        keep = [i for i, n in enumerate(FEATURE_NAMES) if not any(fnmatch.fnmatch(n, p) for p in v["DROP"].split(":"))]
        X, Xa = X[:, keep], [a[:, keep] for a in Xa]
        tests = {k: A[:, keep] for k, A in tests.items()}
    y = np.array([c.label for c in clips])
    co = np.array([c.corpus for c in clips])
    sn = None
    if v.get("SN") == "oracle":
        X, Xa = _oracle_norm(X, g), [_oracle_norm(a, g) for a in Xa]
        tests = {k: _oracle_norm(A, g) for k, A in tests.items()}
    elif v.get("SN") == "causal":
        sn = evaluate.SessionNorm(float(v.get("P", recipe.NORM_PRIOR)), g, rank,
                                  memory=float(v["NM"]) if "NM" in v else None)
    d = Hyperparameters()
    alphas = [float(a) for a in v["AL"].split(":")] if "AL" in v else [d.alpha]
    hp = dataclasses.replace(d, hidden=tuple(int(h) for h in v["H"].split(":")) if "H" in v else d.hidden,
                             alpha=alphas[0])
    Xtrain = tests["floor"] if v.get("CF") == "floor" else X  # the training side's "clean" rows
    hp_for = evaluate.AlphaSearch(Xtrain, y, g, co, hp, alphas, seed=seed, augmented=Xa, sn=sn)

    res: dict = {"variant": v}
    pred = {k: np.empty(len(y), object) for k in ("clean", *tests)}
    splits = evaluate.grouped_splits(y, g, 5, seed)
    for fold in evaluate.fit_folds(Xtrain, y, splits, hp, seed, augmented=Xa, sn=sn, choose=hp_for):
        for k, A in (("clean", X), *tests.items()):
            pred[k][fold.test] = fold.predict(A)
    if new_text:
        pred["newtext"] = evaluate.new_text_predictions(X, y, g, co, [corp.sentence(c) for c in clips], hp,
                                                        folds=5, seed=seed, augmented=Xa, sn=sn, choose=hp_for)
    for k, p in pred.items():
        for c, u in evaluate.uar_by_corpus(y, p, co).items():
            res[f"cv_{k}_{c}"] = round(u, 3)
    for a, b in (("ravdess", "crema-d"), ("crema-d", "ravdess")):
        shared = sorted(set(y[co == a]) & set(y[co == b]))
        tr, te = np.flatnonzero((co == a) & np.isin(y, shared)), np.flatnonzero((co == b) & np.isin(y, shared))
        fold = evaluate.fit_fold(Xtrain, y, tr, te, hp, seed, augmented=Xa, sn=sn, choose=hp_for)
        res[f"x_{a}->{b}"] = round(evaluate.uar(y[te], fold.predict(X), shared), 3)
        res[f"x_{a}->{b}_floor"] = round(evaluate.uar(y[te], fold.predict(tests["floor"]), shared), 3)
    if len(alphas) > 1:
        res["alpha_chosen"] = list(hp_for.chosen.values())  # CV folds, then the two cross-corpus training sets
    return res


def emit(res: dict, out: Path) -> None:
    """Print one result as a JSON line and append it to ``out``."""
    print(json.dumps(res), flush=True)
    with out.open("a") as f:
        f.write(json.dumps(res) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", type=Path, required=True)
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--out", type=Path, default=Path("reports/ablation.jsonl"))
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/features"))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="seed of the folds, arrival order, augmentation and MLP initialisation")
    p.add_argument("--new-text", action="store_true", help="also score each held-out clip with models that never heard its sentence")
    p.add_argument("--robustness", action="store_true", help="also score the held-out clips under white / babble noise, telephone band, a room and the Opus codec")
    args = p.parse_args(argv)
    roots = [d.resolve() for d in args.data]
    try:
        variants = [_parse(text) for text in args.variant]  # all checked before the first one runs
        if args.new_text and any(v.get("CF") == "floor" for v in variants):
            raise ValueError("CF=floor cannot be combined with --new-text (its models train on the clean rows)")
    except ValueError as exc:
        print(f"ablation: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for v in variants:
        t0 = time.perf_counter()
        res = run_variant(v, roots, args.cache_dir, args.jobs, args.seed, args.new_text, args.robustness)
        res["seed"] = args.seed
        res["seconds"] = round(time.perf_counter() - t0)
        emit(res, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
