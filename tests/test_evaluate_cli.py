"""ser-evaluate's command line: bad --data is one line and a non-zero exit; the default output is not
the shipped reports."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

MAIN = "import sys; from ser_live.train.evaluate_cli import main; sys.exit(main())"


def _evaluate(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", MAIN, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _one_line(r: subprocess.CompletedProcess, needle: str) -> None:
    assert r.returncode != 0
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser-evaluate: ") and needle in lines[0], r.stderr
    assert r.stdout == ""


def test_a_missing_data_folder_is_one_line(tmp_path):
    _one_line(_evaluate("--data", str(tmp_path / "nowhere"), cwd=tmp_path), "no such folder")


def test_an_empty_data_folder_is_one_line(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "notes.txt").write_text("no audio here")
    _one_line(_evaluate("--data", str(tmp_path / "corpus"), cwd=tmp_path), "no RAVDESS or CREMA-D clips found")
    assert not (tmp_path / "evaluation").exists()


def test_the_default_output_is_under_the_current_folder_not_the_shipped_reports(tmp_path):
    shipped = {p: p.read_bytes() for p in (REPO / "reports").glob("evaluation*")}
    jsons = [str(REPO / "reports" / "evaluation.json"), str(REPO / "reports" / "evaluation-fast-seed1.json")]
    r = _evaluate("--side-by-side", *jsons, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "evaluation" / "evaluation.md").read_text().strip() == r.stdout.strip()
    assert {p: p.read_bytes() for p in (REPO / "reports").glob("evaluation*")} == shipped


def test_the_recorded_command_reproduces_the_options_as_they_are_typed():
    from ser_live.train.evaluate_cli import _command, _parser

    p = _parser()
    args = p.parse_args(["--data", "a", "b", "--out", "reports/x", "--encoder-blocks", "1,3", "--seed", "1", "--jobs", "1"])
    command = _command(p, args)
    assert command == "ser-evaluate --data a b --out reports/x --encoder-blocks 1,3 --seed 1"
    assert p.parse_args(command.split()[1:]).encoder_blocks == (1, 3)
    joined = p.parse_args(["--data", "a", "--encoder", "smart-turn-v3.2+whisper-base", "--encoder-blocks", "3+1,2"])
    command = _command(p, joined)
    assert command.endswith("--encoder-blocks 3+1,2")  # the encoder is the default one, so not repeated
    assert p.parse_args(command.split()[1:]).encoder_blocks == ((3,), (1, 2))


def test_each_shipped_report_is_its_json_rendered_with_cross_corpus_recall_per_class():
    """Every reports/evaluation*.md is what ser-evaluate renders from the JSON beside it, and it shows the recall of
    each class across corpora (where cross-corpus UAR is lost), not only in CV."""
    import json

    from ser_live.train.evaluate_cli import render

    jsons = sorted((REPO / "reports").glob("evaluation*.json"))
    assert jsons
    for f in jsons:
        r = json.loads(f.read_text())
        md = render(r)
        assert md == f.with_suffix(".md").read_text(), f"{f.with_suffix('.md').name} is not its JSON rendered"
        (line,) = [x for x in md.splitlines() if x.startswith("Per-class recall across corpora")]
        for pair, m in r["cross_corpus"].items():
            assert f"{pair}: " + ", ".join(f"{label} {100 * v:.1f}" for label, v in m["recall"].items()) in line


def test_cross_corpus_is_repeated_per_head_seed_and_judged_on_the_mean():
    """Each cross-corpus test is run once per head seed (seeds spaced by the member count, the split seed first,
    each run what a single cross-corpus test with that seed gives); the report's row is the mean, judged against
    the target, with the seeds' range; a report of one head keeps its one figure."""
    import copy
    import json

    import numpy as np

    from ser_live.train import evaluate
    from ser_live.train.evaluate_cli import render, rows
    from ser_live.train.model import Hyperparameters

    assert evaluate.head_seeds(1, 3, 3) == [1, 4, 7]
    rng = np.random.default_rng(0)
    labels, n = np.array(["angry", "happy", "sad"]), 240
    y = labels[rng.integers(0, 3, n)]
    corpora = np.repeat(["a", "b"], n // 2)
    groups = np.array([f"{c}:{i % 6}" for i, c in enumerate(corpora)])
    X = rng.normal(size=(n, 8)) + (y[:, None] == labels).astype(float) @ rng.normal(size=(3, 8)) * 0.8
    hp = Hyperparameters(hidden=8, members=2, max_iter=30)
    xc = evaluate.cross_corpus_seeds(X, y, groups, corpora, hp, seeds=[0, 2, 4])
    for seed in (0, 2, 4):
        alone = evaluate.cross_corpus(X, y, groups, corpora, hp, seed=seed)
        assert {k: m["uar_by_head_seed"][str(seed)] for k, m in xc.items()} == {k: m["uar"] for k, m in alone.items()}
    assert xc["a->b"]["uar"] == xc["a->b"]["uar_by_head_seed"]["0"]
    assert xc["a->b"]["uar_mean"] == np.mean(list(xc["a->b"]["uar_by_head_seed"].values()))

    r = json.loads((REPO / "reports" / "evaluation-fast.json").read_text())
    one = [x for x in render(r).splitlines() if x.startswith("| cross-corpus UAR crema-d->ravdess")]
    assert len(one) == 1 and "head seeds" not in one[0]
    several = copy.deepcopy(r)
    m = several["cross_corpus"]["crema-d->ravdess"]
    m.update(uar=0.46, uar_by_head_seed={"0": 0.46, "3": 0.40, "6": 0.43}, uar_mean=0.43)
    (line,) = [x for x in render(several).splitlines() if x.startswith("| cross-corpus UAR crema-d->ravdess")]
    assert "mean of 3 head seeds (40.0-46.0) | 43.0 | ≥ 45.0 | **not met**" in line
    assert rows(several)["cross-corpus crema-d → ravdess"][0] == 43.0
