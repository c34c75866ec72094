"""Do training copies cut to part of the utterance (a few of its words) make the encoder model generalise to
sentences and corpora it never heard?

    python -m experiments.crop_copies --data ../shared/data/ravdess ../shared/data/crema-d

The encoders hear words, and both corpora repeat a few fixed sentences (RAVDESS 2, CREMA-D 12), so a head can
learn how each emotion sounds *in each sentence*; on a sentence it never heard that knowledge does not apply.
A copy of every training utterance cut to a contiguous part of it (a random 40-70% of the runtime's cut, at
least 0.6 s, encoded on its own as the runtime encodes a short utterance) shows the head the same emotion over
other runs of words, many more than the corpora's sentences. Held-out rows are the whole clean clips. The
shipped recipe's input (``recipe.ENCODER`` with ``recipe.ENCODER_BLOCKS``) under the probe's
logistic-regression head, trained on both corpora: on the clean clips and the recipe's noisy copy (as
``ser-train`` trains), and on those plus one or two crop copies; scored per corpus in speaker-grouped CV (split
seeds 0 and 1), on sentences never heard and across corpora both ways. Prints one line per split seed and
variant. The crops' embeddings are kept in ``--cache-dir`` (``crop-copies-*.npz``).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from functools import partial
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from experiments import probe
from ser_live.train import augment, dataset

#: a crop's share of the cut utterance (drawn uniformly) and its shortest length (s)
SHARE = (0.4, 0.7)
MIN_S = 0.6

#: variant name -> crop copies beside the clean clips and the recipe's noisy copy
VARIANTS = {"clean + noisy copy (shipped)": 0, "+ one crop copy": 1, "+ two crop copies": 2}


def crop(audio: np.ndarray, key: str, copy: int, rate: int = 16000) -> np.ndarray:
    """A contiguous part of ``audio``: a share drawn in SHARE (at least MIN_S, at most all of it), at a random
    start; the same for the same (``key``, ``copy``) in any process."""
    rng = np.random.default_rng([zlib.crc32(key.encode()), copy, 77])
    n = audio.size
    length = min(n, max(int(rng.uniform(*SHARE) * n), int(MIN_S * rate)))
    start = int(rng.integers(0, n - length + 1))
    return audio[start : start + length]


_EXTRACTOR = {}


def _crop_embeddings(paths: list[str], copies: int, cache_dir: str) -> list[np.ndarray]:
    """``copies`` crop embeddings (rows) of each clip in ``paths``, each clip cut alone by the runtime's segmenter."""
    from ser_live.segmenter import session_utterances, span_of

    if "x" not in _EXTRACTOR:
        _EXTRACTOR["x"] = probe.recipe_extractor(Path(cache_dir))
    extractor = _EXTRACTOR["x"]
    config = dataset.segmenter_config()
    out = []
    for p in paths:
        audio = dataset.load_audio(p)
        span = span_of(audio, session_utterances(audio, config)[0])
        speech = span if span is not None and span.size else audio
        out.append(np.stack([extractor.extract(crop(speech, Path(p).name, c)) for c in range(copies)]))
    return out


def crop_rows(e: probe.Embeddings, copies: int, cache_dir: Path, jobs: int) -> list[np.ndarray]:
    """``copies`` arrays of crop embeddings, each row for the same clip as ``e.X``'s (computed once, then cached)."""
    paths = [str(c.path) for c in e.fs.clips]
    what = [paths, copies, SHARE, MIN_S, e.extractor.encoder_info, e.extractor.encoder.path.name]
    key = hashlib.sha256(json.dumps(what, default=str).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"crop-copies-{key}.npz"
    if path.is_file():
        rows = np.load(path)["rows"]
    else:
        chunks = [paths[i : i + 64] for i in range(0, len(paths), 64)]
        done = Parallel(n_jobs=jobs)(delayed(_crop_embeddings)(c, copies, str(cache_dir)) for c in chunks)
        rows = np.stack([r for chunk in done for r in chunk])  # (clips, copies, size)
        np.savez(path, rows=rows)
    return [rows[:, c].astype(np.float64) for c in range(copies)]


def main() -> None:
    args = probe.parser(__doc__, VARIANTS).parse_args()
    e = probe.clean_embeddings(args.data, args.cache_dir, args.jobs, extractor=probe.recipe_extractor(args.cache_dir))
    noisy = dataset.build_features(e.fs.clips, roots=e.roots, cache_dir=args.cache_dir, jobs=args.jobs,
                                   corruption=augment.training_copies(1, 0)[0], extractor=e.extractor)
    if len(noisy.clips) != len(e.fs.clips):
        raise SystemExit(f"{len(e.fs.clips) - len(noisy.clips)} clips failed in the noisy copy")
    crops = crop_rows(e, max(VARIANTS[v] for v in args.variants), args.cache_dir, args.jobs)
    for seed in args.seeds:
        for name in args.variants:
            extra = [noisy.X.astype(np.float64)] + crops[: VARIANTS[name]]
            probe.report(partial(probe.head_predict, e.X, e.y, extra=extra), e, seed, name, args.jobs)


if __name__ == "__main__":
    main()
