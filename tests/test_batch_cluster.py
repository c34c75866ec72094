"""ser-batch --address: the same job on a Ray cluster that was already running (a real one-node cluster
started with ``ray start --head``), found by ``auto`` or given as HOST:PORT (with its token if it wants one),
giving the rows a local run gives; a Ray Client address refused."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, real_clips

ray = pytest.importorskip("ray", reason="ser-batch needs the scale extra")
pq = pytest.importorskip("pyarrow.parquet")

from ser_live import batch  # noqa: E402

PORT = 6391
TOKENS = importlib.util.find_spec("ray._private.authentication") is not None  # Ray with token authentication


@pytest.fixture
def cluster(tmp_path_factory):
    """A one-node cluster started with ``ray start --head``, with token authentication where Ray has it (a token
    of its own, not the user's ``~/.ray/auth_token``); the environment a driver needs to send that token."""
    ray = Path(sys.executable).parent / "ray"
    plain = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}  # an earlier ray.init may set them
    token = tmp_path_factory.mktemp("ray") / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = dict(plain, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token)) if TOKENS else plain
    subprocess.run([str(ray), "start", "--head", "--port", str(PORT), "--num-cpus", "2", "--include-dashboard", "false",
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=120, env=env)
    try:
        yield env
    finally:
        subprocess.run([str(ray), "stop", "--force"], capture_output=True, timeout=120)


def test_the_same_job_runs_on_an_existing_cluster(tmp_path, cluster):
    src = tmp_path / "src"
    src.mkdir()
    for clip in real_clips(2, 2):
        shutil.copy(clip, src / clip.name)
    command = [sys.executable, "-c", "from ser_live import batch; batch.main()", str(src), "--model", "fast"]
    if TOKENS:  # the cluster wants its token: a driver not told to send it is turned away, and ser-batch says why
        plain = {k: v for k, v in cluster.items() if not k.startswith("RAY_AUTH")}
        refused = subprocess.run([*command, "--out", str(tmp_path / "refused"), "--address", f"127.0.0.1:{PORT}"],
                                 capture_output=True, text=True, timeout=300, env=plain)
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
        assert refused.stderr.startswith("ser-batch: cannot start Ray: ") and "RAY_AUTH_MODE=token" in refused.stderr
    # the cluster this machine's Ray knows of, and the same cluster by its head's address
    for name, address in (("remote", "auto"), ("by-address", f"127.0.0.1:{PORT}")):
        remote = subprocess.run([*command, "--out", str(tmp_path / name), "--address", address], capture_output=True,
                                text=True, timeout=300, env=cluster)
        assert remote.returncode == 0, remote.stderr
        assert "scored 4 files" in remote.stdout
    local = subprocess.run([*command, "--out", str(tmp_path / "local"), "--cpus", "1"], capture_output=True, text=True,
                           timeout=300)
    assert local.returncode == 0, local.stderr
    columns = ["source", "start_s", "end_s", "p_angry", "p_neutral", "p_sad"]
    rows = [sorted(pq.read_table(tmp_path / name / "utterances", columns=columns).to_pylist(),
                   key=lambda r: (r["source"], r["start_s"])) for name in ("remote", "by-address", "local")]
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) >= 3


@pytest.mark.parametrize("address, env", [("ray://127.0.0.1:10001", None), ("auto", "ray://127.0.0.1:10001")])
def test_ray_client_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys, address, env):
    """Ray Data does not run over Ray Client (ray://, given or in RAY_ADDRESS): one line says what to do instead."""
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code = batch.run([str(REPO / "examples" / "sample.flac"), "--out", str(tmp_path / "out"), "--address", address])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "Ray Data does not run over Ray Client" in err and "on a node of the cluster with --address auto" in err
    assert not (tmp_path / "out").exists() and not ray.is_initialized()
