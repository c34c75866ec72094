"""The nuisance projection study (experiments/nuisance_projection.py): the projection removes what tells the
training speakers apart and nothing else, and the study runs end to end on a few real speakers."""

import shutil
import subprocess
import sys

import numpy as np

from conftest import REPO
from experiments.nuisance_projection import nuisance_directions, project_out
from ser_live.train import encoders, recipe


def _offset_spread(Z, y, speakers) -> float:
    centroids = {c: Z[y == c].mean(axis=0) for c in np.unique(y)}
    resid = Z - np.stack([centroids[c] for c in y])
    offsets = np.stack([resid[speakers == s].mean(axis=0) for s in np.unique(speakers)])
    return float(np.abs(offsets - offsets.mean(axis=0)).max())


def test_the_projection_removes_the_speakers_offsets_and_keeps_the_classes():
    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(6), 40)
    y = np.tile(np.arange(4), 60)
    class_means = rng.normal(size=(4, 32)) * 3
    voice = rng.normal(size=(6, 32)) * 5  # each speaker's offset, in any direction
    Z = class_means[y] + voice[speakers] + rng.normal(size=(240, 32)) * 0.1
    V = nuisance_directions(Z, y, speakers, k=10)
    assert V.shape == (5, 32)  # at most one direction fewer than speakers
    P = project_out(Z, V)
    assert _offset_spread(Z, y, speakers) > 1.0 and _offset_spread(P, y, speakers) < 1e-9
    assert np.allclose(project_out(P, V), P)  # a projection
    inside = rng.normal(size=(3, 32))
    inside -= (inside @ np.linalg.qr(V.T)[0]) @ np.linalg.qr(V.T)[0].T  # orthogonal to every removed direction
    assert np.allclose(project_out(inside, V), inside)
    # fewer directions remove less: the first is the one along which the speakers' offsets differ most
    assert _offset_spread(project_out(Z, V[:1]), y, speakers) < _offset_spread(Z, y, speakers)


def test_the_study_runs_on_a_few_real_speakers(small_corpora, tmp_path):
    cache = tmp_path / "cache"
    (cache / "encoders").mkdir(parents=True)  # the shipped encoder, where ser-train would put the one it derives
    name = encoders.derived_file_name(recipe.ENCODER, recipe.ENCODER_BLOCKS)
    shutil.copy(REPO / "models" / name, cache / "encoders" / name)
    proc = subprocess.run([sys.executable, "-m", "experiments.nuisance_projection", "--data",
                           str(small_corpora / "ravdess"), str(small_corpora / "crema-d"), "--cache-dir", str(cache),
                           "--seeds", "0", "--variants", "none", "speakers 10", "--jobs", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["split seed 0, none", "split seed 0, speakers 10"]
    for line in lines:
        scores = dict(item.rsplit(" ", 1) for item in line.split(": ", 1)[1].split("; "))
        assert sorted(scores) == ["CV crema-d", "CV ravdess", "crema-d -> ravdess", "ravdess -> crema-d",
                                  "sentences never heard crema-d", "sentences never heard ravdess"]
        assert all(0.0 <= float(v) <= 100.0 for v in scores.values())
