"""ser-report: a log written by the real pipeline from the shipped sample, rendered as a page and a PNG;
the page parsed, checked against the CSV and drawn by a headless browser; bad inputs."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from ser_live import report

BIN = Path(sys.executable).parent
#: a file name a page must escape; the replay logs it as the source
AWKWARD_NAME = "call <b>&amp; 'x\" & y.flac"


def _ser_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ser-report"), *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """A log of the shipped sample replayed through ser-live, under a file name with markup in it."""
    folder = tmp_path_factory.mktemp("report")
    clip = folder / AWKWARD_NAME
    shutil.copyfile(REPO / "examples" / "sample.flac", clip)
    log = folder / "session.csv"
    r = subprocess.run([str(BIN / "ser-live"), "--file", str(clip), "--speed", "0", "--log", str(log), "--plain"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return log


@pytest.fixture(scope="module")
def rendered(session) -> tuple[Path, Path]:
    r = _ser_report(str(session), "--out", str(session.with_name("page.html")))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    html_path, png_path = session.with_name("page.html"), session.with_name("page.png")
    assert r.stdout == f"ser-report: wrote {html_path} and {png_path}\n"
    return html_path, png_path


def _rows(log: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(log.open(newline="")))
    assert len(rows) >= 4  # the sample has six sentences
    return rows


def _labels(log: Path) -> list[str]:
    header = next(csv.reader(log.open(newline="")))
    return [c[2:] for c in header if c.startswith("p_")]


def _page(html_path: Path) -> ET.Element:
    """The page as a tree: the page is well-formed XML as well as HTML, so a strict parser must accept it."""
    return ET.fromstring(html_path.read_text(encoding="utf-8").removeprefix("<!DOCTYPE html>\n"))


def _text(element: ET.Element) -> str:
    return "".join(element.itertext()).strip()


def test_page_has_every_utterance_and_label_and_escapes_the_source(session, rendered):
    html_path, _ = rendered
    page, rows, labels = _page(html_path), _rows(session), _labels(session)
    table = page.find(".//table[@class='utterances']")
    shown = [[_text(td) for td in tr.findall("td")] for tr in table.find("tbody")]
    assert shown == [[str(i), r["start_s"], r["end_s"], r["emotion"], r["confidence"]] for i, r in enumerate(rows, start=1)]
    legend = [_text(span) for span in page.find(".//div[@class='legend']")]
    assert legend == labels
    assert [tr.get("data-emotion") for tr in page.find(".//table[@class='time-per-emotion']/tbody")] == labels
    source = rows[0]["source"]
    assert source.endswith(AWKWARD_NAME)
    assert [_text(h2) for h2 in page.iter("h2")] == [source]
    text = html_path.read_text(encoding="utf-8")
    assert "<b>" not in text and "&amp;amp;" in text  # the name's markup is shown, not interpreted
    assert len(page.findall(".//svg")) == 3  # timeline, time per emotion, confidence


def test_page_loads_nothing_from_the_network(session, tmp_path):
    out = tmp_path / "two.html"
    assert _ser_report(str(session), str(session), "--out", str(out)).returncode == 0
    text = out.read_text(encoding="utf-8")
    references = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)|url\(\s*["']?([^"')]*)|@import\s+["']?([^"';]*)""", text)
    targets = [t for groups in references for t in groups if t]
    assert len(targets) == 2, "two sources: the page links to both sections, and to nothing else"
    assert all(t.startswith("#") for t in targets), targets
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", text)
    assert not re.search(r"https?:", text)


def test_time_per_emotion_is_the_summed_durations_of_the_top_emotions(session, rendered):
    page, rows = _page(rendered[0]), _rows(session)
    seconds, counts = defaultdict(float), defaultdict(int)
    for r in rows:
        seconds[r["emotion"]] += float(r["end_s"]) - float(r["start_s"])
        counts[r["emotion"]] += 1
    assert len(seconds) >= 2  # the sample is not one emotion throughout: the sums are told apart
    table = {tr.get("data-emotion"): [_text(td) for td in tr.findall("td")]
             for tr in page.find(".//table[@class='time-per-emotion']/tbody")}
    bars = {t.text for t in page.findall(".//svg[@aria-label='time per emotion']/text")}
    for label in _labels(session):
        assert table[label][1] == f"{seconds[label]:.2f}", label
        assert table[label][3] == str(counts[label]), label
        assert f"{seconds[label]:.2f} s" in bars, label
    total = sum(seconds.values())
    assert sum(float(cells[2].rstrip("%")) for cells in table.values()) == pytest.approx(100, abs=0.3)
    assert f"{total:.2f} s of speech" in _text(page.find(".//section/p"))


def _image(path: Path) -> np.ndarray:
    """RGB, 0-255."""
    from matplotlib.image import imread

    pixels = imread(path)
    if pixels.dtype != np.uint8:
        pixels = np.round(pixels * 255)
    return pixels[..., :3].astype(int)


def _assert_drawn(pixels: np.ndarray, labels: list[str], min_pixels: int) -> None:
    """Not blank: a meaningful part is not white, and every label's colour covers some pixels."""
    assert (np.abs(pixels - 255).max(axis=-1) > 24).mean() > 0.04
    colours = report.label_colours([report.Log("", tuple(labels), ())])
    for label in labels:
        rgb = np.array([int(colours[label][i : i + 2], 16) for i in (1, 3, 5)])
        found = int((np.abs(pixels - rgb).max(axis=-1) <= 8).sum())
        assert found >= min_pixels, f"{label} ({colours[label]}): {found} pixels"


def test_png_timeline_shows_every_label(session, rendered):
    pixels = _image(rendered[1])
    assert pixels.shape[1] >= 800
    _assert_drawn(pixels, _labels(session), min_pixels=30)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


def test_a_browser_draws_the_page(session, rendered, tmp_path):
    shot = tmp_path / "shot.png"
    r = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
                        rendered[0].resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    pixels = _image(shot)
    assert pixels.shape[:2] == (1600, 1200)
    _assert_drawn(pixels, _labels(session), min_pixels=100)  # the legend's and the table's swatches at least


def test_a_continued_log_is_one_section_per_session_and_the_page_needs_no_png(tmp_path):
    header = report.BASE_COLUMNS + ["p_calm", "p_joy"]
    rows = [["mic <1>", "0.5", "2.0", "t1", "calm", "0.9", "1", "0.9", "0.1"],
            ["mic <1>", "3.0", "4.0", "t2", "joy", "0.6", "1", "0.4", "0.6"],
            ["mic <1>", "0.2", "1.2", "t3", "joy", "0.7", "1", "0.3", "0.7"]]  # the times restart: a new session
    log = report.parse_log("in memory", header, rows)
    assert [len(s.utterances) for s in report.sections(log)] == [2, 1]
    html_path = tmp_path / "page.html"
    assert report.write_report([log], html_path) == []
    assert list(tmp_path.iterdir()) == [html_path]
    page = _page(html_path)
    assert [_text(h2) for h2 in page.iter("h2")] == ["mic <1>", "mic <1>"]
    assert [tr.get("data-emotion") for tr in page.find(".//table[@class='time-per-emotion']/tbody")] == ["calm", "joy"]


def _other_csv(folder: Path) -> Path:
    (folder / "other.csv").write_text("a,b,c\n1,2,3\n")
    return folder / "other.csv"


def _header_only(folder: Path) -> Path:
    (folder / "header.csv").write_text(",".join(report.BASE_COLUMNS + ["p_sad"]) + "\n")
    return folder / "header.csv"


def _bad_row(folder: Path) -> Path:
    (folder / "row.csv").write_text(",".join(report.BASE_COLUMNS + ["p_sad"]) + "\nmic,0.1,x,t,sad,1,1,1\n")
    return folder / "row.csv"


def _empty(folder: Path) -> Path:
    (folder / "empty.csv").write_text("")
    return folder / "empty.csv"


@pytest.mark.parametrize("make, says", [
    (lambda folder: folder / "missing.csv", "no such file"),
    (lambda folder: folder, "not a regular file"),
    (lambda folder: Path(shutil.copyfile(REPO / "examples" / "sample.flac", folder / "audio.csv")), "not a ser-live log"),
    (_other_csv, "not a ser-live log"),
    (_empty, "empty"),
    (_header_only, "no utterances"),
    (_bad_row, "line 2"),
], ids=["missing", "folder", "audio", "other-csv", "empty", "header-only", "bad-row"])
def test_a_bad_log_is_one_line_and_exit_1(make, says, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    bad = make(folder)
    out = tmp_path / "page.html"
    r = _ser_report(str(bad), "--out", str(out))
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"ser-report: {bad}: ") and says in r.stderr, r.stderr
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_a_bad_log_among_several_is_left_out(session, tmp_path):
    missing = tmp_path / "missing.csv"
    out = tmp_path / "page.html"
    r = _ser_report(str(missing), str(session), "--out", str(out))
    assert r.returncode == 1, r.stderr
    assert r.stderr == f"ser-report: {missing}: no such file (left out)\n"
    page = _page(out)
    assert len(page.find(".//table[@class='utterances']/tbody")) == len(_rows(session))
    assert out.with_suffix(".png").is_file()


def test_an_output_that_is_a_log_is_refused(session):
    before = session.read_bytes()
    r = _ser_report(str(session), "--out", str(session))
    assert r.returncode == 1 and r.stderr == f"ser-report: {session} is one of the logs; choose another output file\n"
    assert session.read_bytes() == before


def test_without_matplotlib_the_page_is_written_and_the_png_is_explained(session, tmp_path):
    """Asked for the page alone, ser-report writes it and says in one line why there is no PNG; asked for a PNG
    by name, it says what to install and writes nothing."""
    code = "import sys\nsys.modules['matplotlib'] = None\nfrom ser_live.report import main\nmain()"
    out = tmp_path / "page.html"
    r = subprocess.run([sys.executable, "-c", code, str(session), "--out", str(out)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout == f"ser-report: wrote {out}\n", r.stdout
    assert r.stderr.count("\n") == 1 and "pip install 'ser-live[report]'" in r.stderr, r.stderr
    assert out.stat().st_size > 0 and not out.with_suffix(".png").exists()
    out.unlink()
    r = subprocess.run([sys.executable, "-c", code, str(session), "--out", str(out), "--png", str(tmp_path / "t.png")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert r.stderr.count("\n") == 1 and "pip install 'ser-live[report]'" in r.stderr, r.stderr
    assert not out.exists()


def _ser_live(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ser-live"), *args], capture_output=True, text=True, timeout=180, **kwargs)


def test_ser_live_report_is_ser_reports_page_of_the_log(session, tmp_path):
    """ser-live --log L --report P: at the end of the replay, P and the PNG beside it are byte for byte what
    ser-report makes of L."""
    log, page = tmp_path / "session.csv", tmp_path / "live.html"
    r = _ser_live("--file", str(session.with_name(AWKWARD_NAME)), "--speed", "0", "--plain", "--log", str(log),
                  "--report", str(page))
    assert r.returncode == 0, r.stderr
    assert r.stderr.endswith(f"ser-live: wrote {page} and {page.with_suffix('.png')}\n"), r.stderr
    assert len(_rows(log)) == len(r.stdout.splitlines()) - 1  # stdout: the header, then one line per utterance
    offline = tmp_path / "offline.html"
    assert _ser_report(str(log), "--out", str(offline)).returncode == 0
    assert page.read_bytes() == offline.read_bytes()
    assert page.with_suffix(".png").read_bytes() == offline.with_suffix(".png").read_bytes()


def test_ser_live_report_without_a_log(session, tmp_path):
    """Without --log, the page is of a temporary log written the same way, which is removed: the utterances of
    the fixture's replay of the same file, and the log named as one that was not kept."""
    scratch, page = tmp_path / "tmp", tmp_path / "live.html"
    scratch.mkdir()
    r = _ser_live("--file", str(session.with_name(AWKWARD_NAME)), "--speed", "0", "--plain", "--report", str(page),
                  env={**os.environ, "TMPDIR": str(scratch)})
    assert r.returncode == 0, r.stderr
    shown = [[_text(td) for td in tr.findall("td")] for tr in _page(page).find(".//table[@class='utterances']/tbody")]
    rows = _rows(session)
    assert shown == [[str(i), r["start_s"], r["end_s"], r["emotion"], r["confidence"]] for i, r in enumerate(rows, start=1)]
    assert f"{len(rows)} utterances from 1 source session(s); logs: this session (no --log)" in page.read_text()
    assert page.with_suffix(".png").stat().st_size > 0
    assert not list(scratch.glob("ser-live-*"))  # the temporary log's folder (other libraries leave files there)
