"""Process-wide settings of a ser-live process (realtime/process.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import real_clips

_PROBE = """
import resource, sys, threading
from ser_live import process
if sys.argv[1] == "keep":
    assert process.keep_freed_memory()
import numpy as np, soundfile as sf
from ser_live.features import extract

x = np.concatenate([sf.read(p, dtype="float32")[0] for p in sys.argv[2:]])[: 8 * 16000]
out = []

def work():  # on a thread, as ser-live's worker
    for _ in range(5):
        extract(x)
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(10):
        extract(x)
    out.append((resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before) / 10)

t = threading.Thread(target=work)
t.start()
t.join()
print(out[0])
"""


def _faults_per_utterance(mode: str) -> float:
    paths = [str(p) for p in real_clips(0, 6)]
    proc = subprocess.run([sys.executable, "-c", _PROBE, mode, *paths], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    return float(proc.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_worker_reuses_memory_instead_of_faulting_in_fresh_pages_for_every_long_utterance():
    """8 s of speech: with the setting ser-live makes at start-up, the features' arrays come from memory the
    process already holds; without it glibc hands them back to the kernel after every utterance."""
    assert _faults_per_utterance("keep") < 20
    assert _faults_per_utterance("default") > 50
