"""The output folder of ``ser-batch``: tables a crash never leaves half-written, and the record of what is
scored, so that a rerun scores only new or changed files.

Layout::

    OUT/manifest.jsonl      the record: a header line (model, labels, session rule, segmenter), then one
                            line per committed part listing its files (scored or failed, with a summary)
    OUT/utterances/folder=F/part-N.parquet
                            one row per utterance, partitioned by source folder (Hive style, F URL-encoded)
    OUT/utterances.csv      the same rows, with the log's columns plus ``folder``
    OUT/files.parquet, .csv one row per scored file: duration, utterances, seconds per emotion
    OUT/errors.parquet, .csv
                            one row per file that could not be scored, with the reason
    OUT/.lock               held while a run writes

A part's Parquet pieces are written under temporary names and renamed into place, then its manifest line is
appended and synced: the line is the commit. Pieces of a part without a line (a crash between the two) are
deleted when the folder is opened again, and a last line cut short is dropped. The whole tables (CSV, files,
errors) are rewritten from the committed parts at the end of every run, each under a temporary name first.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ser_live.batch_scorer import FileJob, FileOutcome
from ser_live.session_log import columns, row_values

MANIFEST = "manifest.jsonl"
FORMAT = "ser-batch-output"
VERSION = 1
SCORED, FAILED, RETRACTED = "scored", "failed", "retracted"


class StoreError(Exception):
    """The output folder cannot be used; the message is meant for the user."""


def header(model: str, model_sha256: str, labels: list[str], session: str, segmenter: dict) -> dict:
    """The manifest's first line: what every row of the folder was scored with."""
    return {"format": FORMAT, "version": VERSION, "model": model, "model_sha256": model_sha256, "labels": labels,
            "session": session, "segmenter": segmenter}


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then rename over ``path``: readers see the old file or the whole new one."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class OutputFolder:
    """An output folder opened for one run (locked against a second writer until :meth:`close`)."""

    def __init__(self, path: Path, head: dict) -> None:
        self.path = Path(path)
        self.labels: list[str] = list(head["labels"])
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / ".lock", "w")
        except OSError as e:
            raise StoreError(f"cannot write to {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise StoreError(f"another ser-batch is writing to {self.path}; wait for it or choose another --out") from None
        try:
            self.latest: dict[str, dict] = {}  # each file's latest entry, by key (absolute path)
            self.parts: list[dict] = []  # committed parts in order: {"part", "folders"}
            self._read_manifest(head)
            self._remove_uncommitted()
        except BaseException:
            self.close()
            raise

    # -- the record

    def _read_manifest(self, head: dict) -> None:
        manifest = self.path / MANIFEST
        if not manifest.exists():
            if any(p.name != ".lock" for p in self.path.iterdir()):
                raise StoreError(f"{self.path} is not empty and holds no {MANIFEST}: choose an empty or new folder")
            self._append(head)
            return
        data = manifest.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):  # a line cut short by a crash: never committed
            with open(manifest, "rb+") as f:
                f.truncate(len(complete))
        lines = complete.decode("utf-8").splitlines()
        try:
            first = json.loads(lines[0]) if lines else None
        except json.JSONDecodeError:
            first = None
        if not isinstance(first, dict) or first.get("format") != FORMAT:
            raise StoreError(f"{manifest} is not a ser-batch manifest")
        if first.get("version") != VERSION:
            raise StoreError(f"{self.path} was written by another version of ser-batch (format {first.get('version')})")
        differs = [k for k in ("model_sha256", "labels", "session", "segmenter") if first.get(k) != head[k]]
        if differs:
            what = {"model_sha256": f"model {first.get('model')}", "labels": "labels",
                    "session": f"--session {first.get('session')}", "segmenter": "segmenter settings"}
            raise StoreError(f"{self.path} holds results scored with other settings ({', '.join(what[k] for k in differs)}); "
                             "give the same ones or another --out")
        for line in lines[1:]:
            self._apply(json.loads(line))

    def _apply(self, record: dict) -> None:
        if "retract" in record:
            for key in record["retract"]:
                self.latest[key] = {**self.latest[key], "status": RETRACTED}
            return
        self.parts.append({"part": record["part"], "folders": record["folders"]})
        for entry in record["files"]:
            self.latest[entry["key"]] = {**entry, "part": record["part"]}

    def _append(self, record: dict) -> None:
        """Append one line and sync it: the commit of what it records."""
        fd = os.open(self.path / MANIFEST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            data = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if "format" not in record:
            self._apply(record)

    def _piece(self, folder: str, part: str) -> Path:
        return self.path / "utterances" / f"folder={quote(folder, safe='')}" / f"{part}.parquet"

    def _remove_uncommitted(self) -> None:
        committed = {p["part"] for p in self.parts}
        for piece in self.path.glob("utterances/*/*.parquet"):
            if piece.stem not in committed:
                piece.unlink()
        for tmp in [*self.path.glob(".tmp-*"), *self.path.glob("utterances/*/.tmp-*")]:
            tmp.unlink()

    # -- what to score

    def is_scored(self, job: FileJob) -> bool:
        """The file is scored and unchanged since (same size and modification time)."""
        e = self.latest.get(job.key)
        return e is not None and e["status"] == SCORED and e["size"] == job.size and e["mtime_ns"] == job.mtime_ns

    def retract(self, jobs: Iterable[FileJob]) -> None:
        """Remove the utterances of these files' earlier scoring (they are about to be scored again)."""
        keys = [j.key for j in jobs if self.latest.get(j.key, {}).get("status") == SCORED]
        by_piece: dict[Path, set[str]] = {}
        for key in keys:
            e = self.latest[key]
            by_piece.setdefault(self._piece(e["folder"], e["part"]), set()).add(e["source"])
        for piece, sources in by_piece.items():
            if not piece.exists():
                continue
            table = pq.read_table(piece)
            kept = table.filter(pc.invert(pc.is_in(table["source"], value_set=pa.array(sorted(sources)))))
            if kept.num_rows:
                _atomic_write(piece, lambda tmp: pq.write_table(kept, tmp))
            else:
                piece.unlink()
        if keys:
            self._append({"retract": keys})

    # -- writing

    def commit(self, scored: list[FileOutcome]) -> None:
        """Write a part: the utterances of these files (one piece per folder), then its manifest line."""
        if not scored:
            return
        part = f"part-{len(self.parts) + 1:06d}"
        folders: dict[str, list[FileOutcome]] = {}
        for o in scored:
            if not o.error:
                folders.setdefault(o.job.folder, []).append(o)
        for folder, outs in folders.items():
            table = self._utterance_table(outs)
            if table.num_rows:
                piece = self._piece(folder, part)
                piece.parent.mkdir(parents=True, exist_ok=True)
                _atomic_write(piece, lambda tmp: pq.write_table(table, tmp))
        self._append({"part": part, "folders": sorted(folders), "files": [self._entry(o) for o in scored]})

    def _utterance_table(self, outs: list[FileOutcome]) -> pa.Table:
        probs = np.array([p for o in outs for p in o.probs], np.float32).reshape(-1, len(self.labels))
        best = probs.argmax(axis=1)
        columns = {
            "source": pa.array([o.job.source for o in outs for _ in o.start_s], pa.string()),
            "start_s": pa.array([t for o in outs for t in o.start_s], pa.float64()),
            "end_s": pa.array([t for o in outs for t in o.end_s], pa.float64()),
            "wall_time": pa.array([int(t * 1000) for o in outs for t in o.wall_time], pa.timestamp("ms", tz="UTC")),
            "emotion": pa.array([self.labels[i] for i in best], pa.string()),
            "confidence": pa.array(probs[np.arange(len(best)), best], pa.float32()),
            "latency_ms": pa.array([t for o in outs for t in o.latency_ms], pa.float32()),
        }
        for i, label in enumerate(self.labels):
            columns[f"p_{label}"] = pa.array(probs[:, i], pa.float32())
        return pa.table(columns)

    def _entry(self, o: FileOutcome) -> dict:
        j = o.job
        entry = {"key": j.key, "source": j.source, "folder": j.folder, "size": j.size, "mtime_ns": j.mtime_ns,
                 "at": time.time()}
        if o.error:
            return {**entry, "status": FAILED, "reason": o.error}
        seconds = dict.fromkeys(self.labels, 0.0)
        for p, start, end in zip(o.probs, o.start_s, o.end_s):
            seconds[self.labels[int(np.argmax(p))]] += end - start
        return {**entry, "status": SCORED, "duration_s": o.duration_s, "utterances": len(o.start_s),
                "speech_s": sum(seconds.values()), "seconds": seconds, "truncated": o.truncated}

    # -- the whole tables

    def entries(self, status: str) -> list[dict]:
        return sorted((e for e in self.latest.values() if e["status"] == status), key=lambda e: e["source"])

    def utterances(self) -> Iterator[tuple[str, pa.Table]]:
        """(folder, utterance table) of every committed piece, in the order they were committed."""
        for p in self.parts:
            for folder in p["folders"]:
                piece = self._piece(folder, p["part"])
                if piece.exists():
                    yield folder, pq.read_table(piece)

    def export(self) -> None:
        """Rewrite utterances.csv, files.* and errors.* from what is committed."""
        _atomic_write(self.path / "utterances.csv", self._write_utterances_csv)
        ms = lambda t: int(t * 1000)  # noqa: E731
        files = self.entries(SCORED)
        table = pa.table({
            "source": pa.array([e["source"] for e in files], pa.string()),
            "folder": pa.array([e["folder"] for e in files], pa.string()),
            "size_bytes": pa.array([e["size"] for e in files], pa.int64()),
            "modified": pa.array([e["mtime_ns"] // 1_000_000 for e in files], pa.timestamp("ms", tz="UTC")),
            "duration_s": pa.array([e["duration_s"] for e in files], pa.float64()),
            "utterances": pa.array([e["utterances"] for e in files], pa.int64()),
            "speech_s": pa.array([e["speech_s"] for e in files], pa.float64()),
            **{f"s_{label}": pa.array([e["seconds"][label] for e in files], pa.float64()) for label in self.labels},
            "truncated": pa.array([e["truncated"] for e in files], pa.string()),
            "scored_at": pa.array([ms(e["at"]) for e in files], pa.timestamp("ms", tz="UTC")),
        })
        self._write_table("files", table)
        errors = self.entries(FAILED)
        self._write_table("errors", pa.table({
            "source": pa.array([e["source"] for e in errors], pa.string()),
            "folder": pa.array([e["folder"] for e in errors], pa.string()),
            "size_bytes": pa.array([e["size"] for e in errors], pa.int64()),
            "modified": pa.array([e["mtime_ns"] // 1_000_000 for e in errors], pa.timestamp("ms", tz="UTC")),
            "reason": pa.array([e["reason"] for e in errors], pa.string()),
            "at": pa.array([ms(e["at"]) for e in errors], pa.timestamp("ms", tz="UTC")),
        }))

    def _write_table(self, name: str, table: pa.Table) -> None:
        _atomic_write(self.path / f"{name}.parquet", lambda tmp: pq.write_table(table, tmp))

        def write_csv(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(table.column_names)
                for row in table.to_pylist():
                    w.writerow(_csv_value(v) for v in row.values())

        _atomic_write(self.path / f"{name}.csv", write_csv)

    def _write_utterances_csv(self, tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["source", "folder", *columns(self.labels)[1:]])
            for folder, table in self.utterances():
                d = table.to_pydict()
                probs = np.stack([np.asarray(d[f"p_{label}"], np.float32) for label in self.labels], axis=1)
                for i in range(table.num_rows):
                    values = row_values(d["source"][i], d["start_s"][i], d["end_s"][i], d["wall_time"][i].timestamp(),
                                        probs[i], d["latency_ms"][i], self.labels)
                    w.writerow([values[0], folder, *values[1:]])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def _csv_value(v: object) -> object:
    if isinstance(v, float):
        return f"{v:.3f}"
    if hasattr(v, "isoformat"):
        return v.astimezone().isoformat(timespec="milliseconds")
    return v
