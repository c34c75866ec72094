"""Process settings of ser-live: freed feature buffers are reused, not page-faulted in afresh."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, real_clips

_PROBE = """
import resource, sys
import numpy as np, soundfile as sf
from realtime import features, process
if sys.argv[1] == "keep":
    assert process.keep_freed_memory()
audio = np.concatenate([sf.read(p, dtype="float32")[0] for p in sys.argv[2:]])[: 3 * 16000]
for _ in range(3):
    features.extract(audio)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    features.extract(audio)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _faults_per_utterance(mode: str) -> float:
    clips = [str(p) for p in real_clips(2, 0)]
    out = subprocess.run([sys.executable, "-c", _PROBE, mode, *clips], cwd=REPO, capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_feature_buffers_are_reused() -> None:
    kept = _faults_per_utterance("keep")
    default = _faults_per_utterance("default")
    assert kept < 20, f"{kept:.0f} page faults per 3 s utterance with the heap kept"
    assert default > 5 * max(kept, 1.0), f"default malloc: {default:.0f} faults, kept: {kept:.0f} (the setting did nothing?)"
