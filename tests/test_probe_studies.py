"""The logistic-regression probe's studies (experiments/probe.py, speed_copies.py): the head learns from the extra
copies it is given and is scored on the clean rows alone; the speed copies differ from the recipe's copy only by
the speed change."""

import dataclasses

import numpy as np

from experiments.probe import head_predict
from experiments.speed_copies import SPEED, VARIANTS, copies
from ser_live.train import augment


def test_the_head_learns_from_the_extra_copies_and_predicts_the_test_rows():
    rng = np.random.default_rng(0)
    y = np.repeat(["angry", "sad"], 50)
    clean = np.where(y[:, None] == "angry", 1.0, -1.0) * np.array([[0.0, 3.0]]) + rng.normal(size=(100, 2)) * 0.3
    tr, te = np.arange(0, 100, 2), np.arange(1, 100, 2)
    flipped = clean.copy()
    flipped[:, 1] *= -1  # copies whose labels point the other way: with enough of them the head follows them
    assert (head_predict(clean, y, tr, te) == y[te]).mean() > 0.95
    assert (head_predict(clean, y, tr, te, extra=[flipped, flipped, flipped]) == y[te]).mean() < 0.05
    assert len(head_predict(clean, y, tr, te[:7])) == 7


def test_the_speed_copies_change_only_the_speed():
    c = copies(0)
    assert c["noisy"] == augment.training_copies(1, 0)[0]
    assert dataclasses.replace(c["noisy sped"], speed_p=0.0) == dataclasses.replace(c["noisy"], speed=SPEED)
    assert c["noisy sped"].speed_p == 1.0 and c["clean sped"].speed_p == 1.0 and not c["clean sped"].noises
    assert {k for v in VARIANTS.values() for k in v} == set(c)
    x = np.sin(np.arange(16000) * 2 * np.pi * 200 / 16000).astype(np.float32)
    sped = c["clean sped"].apply(x, "clip.flac")
    assert 16000 / SPEED[1] - 2 <= sped.size <= 16000 / SPEED[0] + 2 and sped.size != x.size
    assert np.array_equal(sped, c["clean sped"].apply(x, "clip.flac"))  # the same clip, the same draw
