"""Clips to feature vectors: decode to 16 kHz mono, cut with the runtime's segmenter, extract
features, and keep them in an on-disk ``.npz`` cache (no pickle) so re-runs are quick."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import soundfile as sf
import soxr

from ser_live import process
from ser_live.features import SAMPLE_RATE
from ser_live.train.corpora import Clip

if TYPE_CHECKING:
    from ser_live.extractor import Extractor
    from ser_live.segmenter import LevelMemory, SegmenterConfig

CHUNK = 16  # clips per worker task


def load_audio(path: Path | str) -> np.ndarray:
    """Any rate / channel count -> float32 mono 16 kHz."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(audio, dtype=np.float32)


def segmenter_config():
    """The runtime's default segmenter configuration."""
    from ser_live.segmenter import SegmenterConfig

    return SegmenterConfig()


def config_dict(config) -> dict:
    if hasattr(config, "asdict"):
        return dict(config.asdict())
    import dataclasses

    return dataclasses.asdict(config)


def _probe_audio(paths: Sequence[str], n: int = 2) -> list[np.ndarray]:
    """The first ``n`` of ``paths`` (sorted) that can be read: real speech for the cache key's probes
    (an unreadable clip is reported and skipped where it is processed, not here)."""
    out = []
    for p in sorted(paths):
        try:
            out.append(load_audio(p))
        except Exception:
            continue
        if len(out) == n:
            break
    return out


def handcrafted() -> Extractor:
    """The handcrafted features alone (``ser_live.features``): the fast model's input."""
    from ser_live.extractor import Extractor

    return Extractor()


def _behaviour_sha256(speech: Sequence[np.ndarray] = (), extractor: Extractor | None = None) -> str:
    """Hash of what ``extractor`` (default: the handcrafted features) computes on fixed probe signals (a
    voiced glide with noise, a short burst, silence) and on the given real speech: it changes with a
    change of the output, not with a refactor that leaves the output alone."""
    from ser_live import features

    extractor = extractor or handcrafted()

    rng = np.random.default_rng(20261122)
    t = np.arange(int(1.5 * features.SAMPLE_RATE)) / features.SAMPLE_RATE
    phase = 2 * np.pi * (100 * t + 50 * t**2)  # F0 glide 100 -> 250 Hz, weak fundamental: octave choices matter
    voiced = sum(a * np.sin(k * phase) for k, a in enumerate((0.3, 1.0, 0.8, 0.5, 0.3), start=1))
    voiced *= 0.2 * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t))
    probes = [voiced + 0.02 * rng.standard_normal(t.size), 0.1 * rng.standard_normal(3000), np.zeros(8000)]
    probes += list(speech)
    h = hashlib.sha256()
    for p in probes:
        h.update(extractor.extract(p.astype(np.float32)).tobytes())
    return h.hexdigest()


def _cut_sha256(speech: Sequence[np.ndarray], config) -> str:
    """Hash of how the loaded segmenter cuts the given real speech heard as one source twice over: as
    they are, 20 dB quieter (so the VAD gain moves) and over a -40 dBFS white floor (so the background
    limit sets the gain). It changes with a change of the cut, which the segmenter's configuration alone
    does not show."""
    from ser_live.segmenter import session_utterances

    h = hashlib.sha256()
    clips = list(speech)
    noise = np.random.default_rng(20261122).standard_normal(max((c.size for c in clips), default=0)).astype(np.float32)
    for scale, floor in ((1.0, 0.0), (0.1, 0.0), (1.0, 0.01)):
        memory = None
        for audio in clips + clips:
            found, memory = session_utterances(audio * np.float32(scale) + np.float32(floor) * noise[: audio.size],
                                               config, memory)
            h.update(repr([(e.start, e.end, e.levels) for e in found]).encode())
    return h.hexdigest()


def feature_info(extractor: Extractor | None = None) -> dict:
    """Input kind, feature version, size, handcrafted feature names and parameters, the encoder's
    description, source hash and behaviour hash of ``extractor`` (default: the handcrafted features)."""
    from ser_live import features

    extractor = extractor or handcrafted()
    card = extractor.card()
    return {
        "source_sha256": hashlib.sha256(Path(features.__file__).read_bytes()).hexdigest(),
        "behaviour_sha256": _behaviour_sha256((), extractor),
        "input": card["input"],
        "feature_version": int(features.FEATURE_VERSION),
        "feature_size": int(extractor.size),
        "feature_names": list(features.FEATURE_NAMES) if extractor.handcrafted else [],
        "feature_params": features.feature_params(),
        **({"encoder": card["encoder"]} if "encoder" in card else {}),
    }


def clip_features(path: str, config: SegmenterConfig, corruption=None, pool: Sequence[str] = (),
                  memory: LevelMemory | None = None, extractor: Extractor | None = None,
                  ) -> tuple[np.ndarray | None, bool, str, LevelMemory | None]:
    """(features, speech_found, error, level memory after it) for one file, optionally corrupted
    (``ser_live.train.augment.Corruption``) before it is cut; ``memory``: its source's level so far
    (``ser_live.segmenter.LevelMemory``: the segmenter's VAD gain follows it; None: the clip alone).
    Without speech the whole clip is used. ``extractor``: what is computed (default: the handcrafted features)."""
    from ser_live.segmenter import session_utterances, span_of

    extractor = extractor or handcrafted()

    try:
        audio = load_audio(path)
        if corruption is not None:
            audio = corruption.apply(audio, Path(path).name, pool, load_audio)
        found_events, after = session_utterances(audio, config, memory)
        span = span_of(audio, found_events)
        found = span is not None and span.size > 0
        vec = np.asarray(extractor.extract(span if found else audio), dtype=np.float32)
        if not np.all(np.isfinite(vec)):
            return None, found, "non-finite features", after
        return vec, found, "", after
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop a corpus
        return None, False, f"{type(exc).__name__}: {exc}", memory


def _unit_features(paths: list[str], config: SegmenterConfig, corruption=None, pools: list[Sequence[str]] | None = None,
                   session: bool = False, extractor: Extractor | None = None,
                   ) -> list[tuple[np.ndarray | None, bool, str, LevelMemory | None]]:
    """Features of ``paths`` in order; with ``session`` they are one source (a speaker's clips in arrival
    order), each cut at the level the segmenter learned from the ones before, else each heard alone."""
    pools = pools or [()] * len(paths)
    memory = None
    out = []
    for p, pool in zip(paths, pools):
        out.append(clip_features(p, config, corruption, pool, memory, extractor))
        if session:
            memory = out[-1][3]
    return out


def _worker_init() -> None:
    # two cores shared by several processes: keep BLAS single-threaded in workers
    process.pin_blas_threads()


@dataclass
class FeatureSet:
    X: np.ndarray  # (n, FEATURE_SIZE) float32
    clips: list[Clip]  # clips with usable features, same order as X
    no_speech: int  # clips where the segmenter found no utterance (whole clip used)
    failed: list[tuple[str, str]]  # (path, error) of clips that could not be decoded/extracted
    cached: int  # clips served from the cache


def _cache_key(info: dict, seg: dict, corruption: dict | None = None, order: str | None = None) -> str:
    """The cache file's key."""
    blob = json.dumps(
        {
            "sessions": order,
            "corruption": corruption,
            "v": info["feature_version"],
            "params": info["feature_params"],
            "input": info["input"],
            "encoder": {k: v for k, v in info.get("encoder", {}).items() if k != "file"},
            "out": info["behaviour_sha256"],  # changed output without a version bump must not reuse stale features
            "seg": seg,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _digest(path: Path | str) -> str:
    """sha256 of a file's bytes: a cached clip whose copy changed its mtime but not its content is still found."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _group_root(clip: Clip, roots: Sequence[Path]) -> Path:
    for r in roots:
        try:
            clip.path.relative_to(r)
            return r
        except ValueError:
            continue
    return clip.path.parent


def build_features(
    clips: Sequence[Clip],
    *,
    roots: Sequence[Path] = (),
    cache_dir: Path | None = None,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    corruption=None,
    rank: np.ndarray | None = None,
    extractor: Extractor | None = None,
    config: SegmenterConfig | None = None,
) -> FeatureSet:
    """Features for ``clips`` (order kept, failures dropped). One cache file per data root, keyed by a
    hash of (FEATURE_VERSION, feature_params, the features' output on probe signals and on two of the root's
    clips, segmenter config and its cut of those two clips, corruption), named after the root's folder. An entry
    is used when its path within the root and its size match and its mtime does too or, failing that (a copied
    corpus, a re-extracted archive), the sha256 of the file's bytes; a corpus moved or mounted at another path
    keeps its cache.

    ``corruption`` (a ``ser_live.train.augment.Corruption``) is applied to each clip's raw audio before it is cut;
    babble takes its talkers from the other speakers among ``clips``.

    ``rank`` (each clip's position in its speaker's arrival order): each speaker's clips are cut as one
    source in that order, as a microphone session would be (the segmenter's VAD gain follows the level
    of the clips before; the cache key then covers the order). Without it each clip is heard alone.

    ``extractor``: what is computed for each clip (default: the handcrafted features); its kind and
    encoder (file hash, block) are part of the cache key, so encoders never share a cache file.

    ``config``: the segmenter that cuts the clips (default: the runtime's, :func:`segmenter_config`); it is
    part of the cache key."""
    extractor = extractor or handcrafted()
    info = feature_info(extractor)
    config = config or segmenter_config()
    seg = config_dict(config)
    size = info["feature_size"]
    roots = [Path(r).resolve() for r in roots]

    stats = [_stat(c.path) for c in clips]
    vecs: list[np.ndarray | None] = [None] * len(clips)
    speech = [True] * len(clips)
    errors = [""] * len(clips)

    # -- cache lookup, per root
    by_root: dict[Path, list[int]] = {}
    for i, c in enumerate(clips):
        by_root.setdefault(_group_root(c, roots), []).append(i)
    cache_files: dict[Path, Path] = {}
    old_entries: dict[Path, dict[str, tuple]] = {}  # entries of other clips, kept when rewriting
    digests = [""] * len(clips)  # sha256 of each clip's file, where known
    refreshed = False  # an entry found by its content: rewrite the cache
    cached = 0
    # an entry's name: the clip's path within its root, so that a corpus moved or mounted elsewhere keeps its cache
    rel = {i: clips[i].path.relative_to(root).as_posix() for root, idx in by_root.items() for i in idx}
    for root, idx in by_root.items():
        if cache_dir is None:
            continue
        cdict = corruption.to_dict() if corruption is not None else None
        tag = f"-{corruption.name}{corruption.copy}" if corruption is not None else ""
        probe = _probe_audio([str(clips[i].path) for i in idx])  # real speech: pitch, voicing and level paths all run
        info_key = dict(info, behaviour_sha256=_behaviour_sha256(probe, extractor))
        seg_key = dict(seg, cut_sha256=_cut_sha256(probe, config))

        order = None if rank is None else hashlib.sha256(  # the speakers' arrival order
            json.dumps(sorted((rel[i], int(rank[i])) for i in idx)).encode()).hexdigest()

        stem = f"{root.name or 'root'}{tag}"
        f = Path(cache_dir) / f"{stem}-{_cache_key(info_key, seg_key, cdict, order)}.npz"
        cache_files[root] = f
        if not f.exists():
            continue
        try:
            with np.load(f, allow_pickle=False) as z:
                paths, sizes, mtimes = z["paths"], z["sizes"], z["mtimes"]
                feats, found = z["features"], z["speech"]
                sums = z["digests"] if "digests" in z.files else np.full(len(paths), "")
        except Exception:  # noqa: BLE001 - a broken cache is just rebuilt
            continue
        if feats.ndim != 2 or feats.shape[1] != size:
            continue
        where = {p: k for k, p in enumerate(paths.tolist())}
        old_entries[root] = {
            p: (int(sizes[k]), int(mtimes[k]), feats[k], bool(found[k]), str(sums[k])) for p, k in where.items()
        }
        for i in idx:
            k = where.get(rel[i])
            if k is None or int(sizes[k]) != stats[i][0]:
                continue
            if int(mtimes[k]) != stats[i][1]:
                if not sums[k] or _digest(clips[i].path) != sums[k]:
                    continue
                refreshed = True
            vecs[i], speech[i], digests[i] = feats[k], bool(found[k]), str(sums[k])
            cached += 1

    # -- compute the rest
    todo = [i for i in range(len(clips)) if vecs[i] is None]
    if rank is None:
        chunks = [todo[k : k + CHUNK] for k in range(0, len(todo), CHUNK)]
    else:  # a clip's cut depends on the clips before it: whole speakers, each one task in arrival order
        redo = {clips[i].speaker: [] for i in todo}
        for i, c in enumerate(clips):
            if c.speaker in redo:
                redo[c.speaker].append(i)
        chunks = [sorted(idx, key=lambda i: rank[i]) for idx in redo.values()]
        todo = [i for chunk in chunks for i in chunk]
        cached -= sum(vecs[i] is not None for i in todo)
    if progress and cached:
        progress(cached)
    pools: list[Sequence[str]] = [()] * len(clips)
    if corruption is not None and corruption.needs_pool():
        by_speaker: dict[str, list[str]] = {}
        for c in clips:
            by_speaker.setdefault(c.speaker, []).append(str(c.path))
        every = sorted(str(c.path) for c in clips)
        for i in todo:
            own = set(by_speaker[clips[i].speaker])
            pools[i] = [p for p in every if p not in own][::7]  # thinned: a pool of hundreds is plenty

    def args(chunk: list[int]):
        return [str(clips[i].path) for i in chunk], config, corruption, [pools[i] for i in chunk], rank is not None, extractor

    def take(chunk: list[int], results) -> None:
        for i, (vec, found, err, _) in zip(chunk, results):
            vecs[i], speech[i], errors[i] = vec, found, err
        if progress:
            progress(len(chunk))

    if jobs <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            take(chunk, _unit_features(*args(chunk)))
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), initializer=_worker_init) as pool:
            futures = [(chunk, pool.submit(_unit_features, *args(chunk))) for chunk in chunks]
            for chunk, fut in futures:
                take(chunk, fut.result())

    # -- write caches (current clips of each root that have features)
    if cache_dir is not None and (todo or refreshed):
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        for root, idx in by_root.items():
            entries = dict(old_entries.get(root, {}))
            for i in idx:
                if vecs[i] is not None:
                    entries[rel[i]] = (*stats[i], vecs[i], speech[i], digests[i] or _digest(clips[i].path))
            if not entries:
                continue
            keys = sorted(entries)
            f = cache_files[root]
            tmp = f.with_name(f.name + ".tmp.npz")
            np.savez(
                tmp,
                paths=np.array(keys),
                sizes=np.array([entries[k][0] for k in keys], dtype=np.int64),
                mtimes=np.array([entries[k][1] for k in keys], dtype=np.int64),
                features=np.stack([entries[k][2] for k in keys]).astype(np.float32),
                speech=np.array([entries[k][3] for k in keys], dtype=bool),
                digests=np.array([entries[k][4] for k in keys], dtype="U64"),
            )
            os.replace(tmp, f)

    keep = [i for i in range(len(clips)) if vecs[i] is not None]
    X = np.stack([vecs[i] for i in keep]).astype(np.float32) if keep else np.zeros((0, size), np.float32)
    return FeatureSet(
        X=X,
        clips=[clips[i] for i in keep],
        no_speech=sum(1 for i in keep if not speech[i]),
        failed=[(str(clips[i].path), errors[i]) for i in range(len(clips)) if vecs[i] is None],
        cached=cached,
    )
