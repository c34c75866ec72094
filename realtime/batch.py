"""``ser-batch``: score every audio file under the sources on Ray Data, with the live path's answers.

The driver lists the files, groups them into units (the files of one speaker under ``--session``, as
``ser-live --file`` replays them), skips the units already scored in the output folder, and hands the rest
to Ray Data: a pool of actors (:class:`~ser_live.batch_scorer.Scorer`, one CPU each, the model loaded once
per actor) decodes, segments and classifies each unit. Results stream back to the driver, which commits
them to the output folder (:mod:`ser_live.batch_store`) at least every ``--checkpoint-s`` seconds, shows
progress and, at the end or on Ctrl-C, writes the whole tables. Ray and pyarrow are the ``scale`` extra.
"""

from __future__ import annotations

from ser_live import process

process.pin_blas_threads()  # before numpy is first imported

import argparse  # noqa: E402
import contextlib  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

from ser_live.arguments import EXIT_USAGE, OneLineParser  # noqa: E402
from ser_live.cli import MODEL_HELP, _positive, add_segmenter_arguments, segmenter_config  # noqa: E402

EXIT_INTERRUPTED = 130
UNIT_RETRIES = 2  # times a block of work whose actor died is tried again
BLOCK_BYTES = 4 << 20  # audio file bytes in a block of work: about 2 min of 16 kHz WAV, 10 of FLAC
BLOCKS_PER_ACTOR = 4
INSTALL_HINT = "needs Ray Data and pyarrow: pip install 'ser-live[scale]'"


def build_parser() -> argparse.ArgumentParser:
    from ser_live.replay import SESSIONS

    p = OneLineParser(
        prog="ser-batch",
        description="Score every audio file under the sources on Ray (this machine, or a cluster with --address): "
        "one row per utterance, as ser-live --file logs it, in Parquet and CSV. Rerun the same command to score "
        "only new or changed files, or to finish a run that was stopped.",
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help="audio files or folders (searched recursively)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: utterances/ (Parquet, by source folder), utterances.csv, files.*, errors.*")
    p.add_argument("--model", metavar="NAME|ONNX", help=MODEL_HELP)
    p.add_argument("--session", choices=SESSIONS, default="per-file",
                   help="which files are one speaker, as ser-live --session: per-file (default), per-folder, one "
                   "(one speaker's files are scored in order by one actor)")
    ray = p.add_argument_group("Ray")
    ray.add_argument("--cpus", type=int, metavar="N",
                     help="actors, one CPU each (default: every CPU of this machine, or of the cluster)")
    ray.add_argument("--address", metavar="ADDRESS",
                     help="run on an existing Ray cluster, from one of its nodes: 'auto' or HOST:PORT of its head (with "
                     "RAY_AUTH_MODE=token if the cluster uses token authentication) (default: start Ray on this "
                     "machine); every node needs ser-live[scale] and the sources at the same paths. Ray Client "
                     "(ray://HOST:PORT) is refused: Ray Data does not run over it")
    p.add_argument("--checkpoint-s", type=_positive, default=30.0, metavar="SECONDS",
                   help="commit results to the output folder at least this often (default 30)")
    add_segmenter_arguments(p)
    return p


def _err(message: str) -> None:
    sys.stderr.write(f"ser-batch: {message}\n")
    sys.stderr.flush()


def _one_line(e: Exception) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(e)
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def _ray_client_problem(address: str | None) -> str | None:
    """What is wrong with ``address`` if ``ray.init`` would reach the cluster through Ray Client (a ``ray://``
    address, given or, for 'auto', in RAY_ADDRESS): Ray Data's executor needs a driver that is part of the
    cluster."""
    effective = (os.environ.get("RAY_ADDRESS") or address) if address == "auto" else address
    if not effective or "://" not in effective:
        return None
    via, unset = (f" (RAY_ADDRESS={effective})", " and RAY_ADDRESS unset") if effective != address else ("", "")
    return (f"--address {address}{via}: Ray Data does not run over Ray Client; run ser-batch on a node of the "
            f"cluster with --address auto{unset}")


def inventory(sources: list[str]) -> tuple[list, list[str]]:
    """The files to score (:class:`FileJob`, each file once, in ``ser-live --file`` order) and a message
    for each source that gives none."""
    from ser_live.batch_scorer import FileJob
    from ser_live.replay import expand_paths

    jobs, problems, seen = [], [], set()
    for raw in sources:
        found, missing = expand_paths([raw])
        problems += [f"{m.source}: {m.message}" for m in missing]
        root = Path(raw)
        base = root if root.is_dir() else root.parent
        name = Path(base.resolve().name)  # folders are named from the source's own folder down
        for path in found:
            key = os.path.abspath(path)
            if key in seen:
                continue
            seen.add(key)
            folder = name / path.parent.relative_to(base)  # a file given alone: its own folder
            try:
                st = os.stat(path)
                size, mtime = st.st_size, st.st_mtime_ns
            except OSError:
                size, mtime = -1, -1  # scoring says why it cannot be read
            jobs.append(FileJob(key, str(path), folder.as_posix(), size, mtime))
    return jobs, problems


def units(jobs: list, session: str) -> list[list]:
    """Runs of consecutive files of one speaker (``replay.speaker_of``), as ser-live replays them."""
    from ser_live.replay import speaker_of

    out: list[list] = []
    last = object()
    for i, job in enumerate(jobs):
        speaker = speaker_of(Path(job.source), i, session)
        if out and speaker == last:
            out[-1].append(job)
        else:
            out.append([job])
        last = speaker
    return out


class _Interrupt:
    """SIGINT/SIGTERM: a stop request, raised as KeyboardInterrupt only while the driver waits for results
    (never in the middle of a commit)."""

    def __init__(self) -> None:
        self.requested = False
        self.waiting = False

    def __call__(self, signum, frame) -> None:
        self.requested = True
        if self.waiting:
            raise KeyboardInterrupt


class Progress:
    """Files, hours of audio, speed (x real time) and time left, on stderr: a live bar on a terminal,
    else a line at every commit."""

    def __init__(self, files: int, total_bytes: int) -> None:
        self.files, self.total_bytes = files, max(total_bytes, 1)
        self.done = self.failed = self.bytes = self.utterances = 0
        self.audio_s = 0.0
        self.t0 = time.monotonic()
        self.t1: float | None = None  # when scoring stopped
        self._bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeRemainingColumn

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[text]}"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task("scoring", total=self.total_bytes, text=self._text())
            self._bar.start()

    @property
    def elapsed(self) -> float:
        return (self.t1 or time.monotonic()) - self.t0

    @property
    def speed(self) -> float:
        return self.audio_s / max(self.elapsed, 1e-9)

    def _text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.files} files{failed}, {self.audio_s / 3600:.2f} h audio, {self.speed:.0f}x real time"

    def add(self, outcome) -> None:
        self.done += 1
        self.failed += bool(outcome.error)
        self.bytes += max(outcome.job.size, 0)
        self.audio_s += outcome.duration_s
        self.utterances += len(outcome.start_s)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.bytes, text=self._text())

    def checkpoint(self) -> None:
        if self._bar is None:
            left = (self.total_bytes - self.bytes) * self.elapsed / self.bytes if self.bytes else float("nan")
            eta = f", about {left / 60:.0f} min left" if left == left else ""
            _err(f"{self._text()}{eta}")

    def stop(self) -> None:
        self.t1 = time.monotonic()
        if self._bar is not None:
            self._bar.stop()


def _start_ray(address: str | None, cpus: int | None) -> tuple[bool, int]:
    """Ray on this machine or a connection to ``address``; (whether it was started here, CPUs to use)."""
    import logging

    import ray

    for name in ("ray", "ray.data"):  # what goes wrong reaches the user as ser-batch's own lines; Ray's logs keep the rest
        logging.getLogger(name).setLevel(logging.CRITICAL)
    started = not ray.is_initialized()
    if started:
        # "local": a Ray of its own, even where a cluster started with ``ray start`` is running on this machine
        local = {"num_cpus": cpus or os.cpu_count() or 1, "include_dashboard": False} if address is None else {}
        ray.init(address=address or "local", log_to_driver=False, logging_level=logging.ERROR, **local)
    available = int(ray.cluster_resources().get("CPU", 1))
    return started, max(1, min(cpus or available, available))


def _token_hint(address: str | None, error: Exception) -> str:
    """What to try when a cluster given by its address refused the connection: a cluster started with token
    authentication (Ray 2.60's ``ray start`` turns it on when ``~/.ray/auth_token`` exists) turns away a driver that
    was not told to send the token, and Ray sends it on its own only to the cluster that 'auto' finds. Ray says why in its
    native log alone."""
    if address in (None, "auto") or not isinstance(error, ConnectionError) or os.environ.get("RAY_AUTH_MODE"):
        return ""
    return ("; if the cluster uses token authentication, set RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN "
            "(or a file named by RAY_AUTH_TOKEN_PATH; default ~/.ray/auth_token)")


def blocks(todo: list[list], actors: int) -> int:
    """How many blocks (pieces of work an actor takes at once) to cut the units into: about BLOCK_BYTES of
    audio files each, so that scheduling costs little beside scoring even for archives of short clips, but at
    least BLOCKS_PER_ACTOR per actor (the actors share the work evenly) and at most one per unit."""
    size = sum(max(j.size, 0) for unit in todo for j in unit)
    return max(1, min(len(todo), max(math.ceil(size / BLOCK_BYTES), BLOCKS_PER_ACTOR * actors)))


def _dataset(todo: list[list], model: str, segmenter: dict, actors: int, n_blocks: int, isolate: bool = False):
    """The scoring of ``todo`` in ``n_blocks`` blocks on ``actors`` actors; ``isolate``: one block at a time on
    each actor, so that an actor's crash fails only the block that caused it."""
    import ray.data

    from ser_live.batch_scorer import Scorer

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.max_errored_blocks = len(todo)  # a unit whose actor crashed is reported, the others still scored
    ds = ray.data.from_items([{"files": [asdict(j) for j in unit]} for unit in todo],
                             override_num_blocks=n_blocks)
    # An actor that dies (a crash in a native decoder) is restarted and its block tried UNIT_RETRIES more times,
    # then given up: Ray Data's default retries forever, which one crashing file would turn into a hang. Ray Data
    # takes these actor options only as extra keyword arguments, deprecated in favour of named parameters that do
    # not cover them yet (hence the pin below 2.64 in pyproject.toml).
    pool = ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1 if isolate else None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args. is deprecated")
        return ds.map_batches(Scorer, fn_constructor_kwargs={"model": model, "segmenter": segmenter}, batch_size=None,
                              batch_format="pyarrow", compute=pool, num_cpus=1, max_restarts=-1,
                              max_task_retries=UNIT_RETRIES)


def model_identity(spec: str | None) -> tuple[str, str, object]:
    """(what the actors load: a shipped model's name or an absolute path, sha256 of its files, the model)."""
    import hashlib

    from ser_live.api import load_model
    from ser_live.model import card_path
    from ser_live.models import MODELS

    name = spec or "default"
    model = load_model(name)
    digest = hashlib.sha256()
    for path in (model.path, card_path(model.path)):
        digest.update(path.read_bytes())
    return (name if name in MODELS else str(model.path.resolve())), digest.hexdigest(), model


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        segmenter = segmenter_config(args)
    except ValueError as e:
        _err(str(e))
        return EXIT_USAGE
    if args.cpus is not None and args.cpus < 1:
        _err("--cpus must be 1 or more")
        return EXIT_USAGE
    client = _ray_client_problem(args.address)
    if client:
        _err(client)
        return EXIT_USAGE
    try:
        import pyarrow  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        _err(INSTALL_HINT)
        return EXIT_USAGE
    from ser_live.batch_store import OutputFolder, StoreError, header
    from ser_live.model import ModelError

    jobs, problems = inventory(args.sources)
    for message in problems:
        _err(message)
    if not jobs:
        return EXIT_USAGE
    try:
        spec, sha, model = model_identity(args.model)
        store = OutputFolder(Path(args.out), header(spec, sha, list(model.labels), args.session, asdict(segmenter)))
    except (ModelError, StoreError) as e:
        _err(str(e))
        return EXIT_USAGE
    try:
        return _score(args, store, jobs, units(jobs, args.session), spec, asdict(segmenter), problems)
    finally:
        store.close()


def _score(args, store, jobs, all_units, spec, segmenter, problems) -> int:
    from ser_live.batch_scorer import FileOutcome

    todo = [u for u in all_units if not all(store.is_scored(j) for j in u)]
    skipped = len(jobs) - sum(len(u) for u in todo)
    if not todo:
        store.export()
        print(f"ser-batch: nothing to score: all {len(jobs)} files are scored and unchanged in {args.out}")
        return 1 if problems else 0
    store.retract(j for u in todo for j in u)
    stop = _Interrupt()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = Progress(sum(len(u) for u in todo), sum(max(j.size, 0) for u in todo for j in u))
    started, failure = False, ""
    ray_chatter = contextlib.ExitStack()  # Ray prints the errors it hears of (a task retried, an actor lost) on stdout
    if not os.environ.get("SER_LIVE_DEBUG"):
        ray_chatter.enter_context(contextlib.redirect_stdout(ray_chatter.enter_context(open(os.devnull, "w"))))
    try:
        try:
            started, actors = _start_ray(args.address, args.cpus)
        except Exception as e:  # no cluster at --address, no room for Ray's processes, ...
            _err(f"cannot start Ray: {_one_line(e)}{_token_hint(args.address, e)}")
            return 1
        for sig in previous:  # ray.init replaces SIGTERM's handler with its own, which exits at once (status 15)
            signal.signal(sig, stop)
        progress.t0 = time.monotonic()
        actors = min(actors, len(todo))
        seen = _collect(_dataset(todo, spec, segmenter, actors, blocks(todo, actors)), store, progress, stop,
                        args.checkpoint_s)
        lost = [u for u in todo if any(j.key not in seen for j in u)]
        if lost and not stop.requested:  # a block given up after crashes: its units again, one per block
            seen |= _collect(_dataset(lost, spec, segmenter, min(actors, len(lost)), len(lost), isolate=True), store,
                             progress, stop, args.checkpoint_s)
        if not stop.requested:  # a unit whose actor died even alone gave no rows: its files failed
            gone = [FileOutcome(j, error="the worker scoring it stopped (a crash in a decoder?)")
                    for u in todo for j in u if j.key not in seen]
            for o in gone:
                _err(f"{o.job.source}: {o.error} (skipped)")
                progress.add(o)
            store.commit(gone)
    except _EngineFailed as e:
        failure = e.reason
    finally:
        progress.stop()
        store.export()
        if started:
            import ray

            ray.shutdown()
        ray_chatter.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    already = f"; {skipped} already scored" if skipped else ""
    failed = f"; {progress.failed} failed (see {Path(args.out) / 'errors.csv'})" if progress.failed else ""
    print(f"ser-batch: scored {progress.done - progress.failed} files ({progress.audio_s / 3600:.2f} h of audio, "
          f"{progress.utterances} utterances) in {progress.elapsed:.0f} s, {progress.speed:.0f}x real time{already}{failed}; "
          f"results in {args.out}")
    if failure:
        _err(f"the Ray job failed ({failure}); what was scored is saved: rerun the same command to go on")
        return 1
    if stop.requested:
        _err(f"stopped with {progress.files - progress.done} files left; rerun the same command to score them")
        return EXIT_INTERRUPTED
    return 1 if (progress.failed or problems) else 0


class _EngineFailed(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _collect(dataset, store, progress: Progress, stop: _Interrupt, checkpoint_s: float) -> set[str]:
    """Take the results as they come, committing them at least every ``checkpoint_s``, until the end or a
    stop request; the keys of the files seen. Whatever arrived is committed before this returns or raises."""
    from ser_live.batch_scorer import outcomes

    before = set(threading.enumerate())
    batches = iter(dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0))
    pending, seen, last_commit = [], set(), time.monotonic()
    try:
        while not stop.requested:
            stop.waiting = True
            try:
                table = next(batches, None)
            except KeyboardInterrupt:
                break
            except Exception as e:  # the engine failed: keep what is scored, a rerun goes on from there
                raise _EngineFailed(_one_line(e)) from None
            finally:
                stop.waiting = False
            if table is None:
                break
            for o in outcomes(table):
                pending.append(o)
                seen.add(o.job.key)
                progress.add(o)
                if o.error:
                    _err(f"{o.job.source}: {o.error} (skipped)")
            if time.monotonic() - last_commit >= checkpoint_s:
                store.commit(pending)
                pending, last_commit = [], time.monotonic()
                progress.checkpoint()
    finally:
        try:
            store.commit(pending)
        finally:
            _stop_reading(batches, before)
    return seen


def _stop_reading(batches, before: set, timeout_s: float = 10.0) -> None:
    """Close Ray Data's iterator (which stops its executor) and wait for the threads it started to read
    results, all but its block prefetcher (idle with ``prefetch_batches=0``, and it never ends): a thread
    still fetching a result when ``ray.shutdown()`` runs makes Ray's core worker end the whole process, with
    status 1 and no word, before the driver can say what was saved."""
    batches.close()
    deadline = time.monotonic() + timeout_s
    for t in set(threading.enumerate()) - before:
        if t.name != "Prefetcher":
            t.join(max(0.0, deadline - time.monotonic()))


def main(argv: list[str] | None = None) -> None:
    """The ``ser-batch`` command: every user error is one line on stderr and exit 2."""
    try:
        if os.environ.get("SER_LIVE_DEBUG"):
            code = run(argv)
        else:
            with process.quiet_native_stderr():  # Ray's and native libraries' chatter stays in Ray's logs
                code = run(argv)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Exception as e:  # last resort: one line, not a traceback
        if os.environ.get("SER_LIVE_DEBUG"):
            raise
        _err(f"unexpected error: {type(e).__name__}: {e} (set SER_LIVE_DEBUG=1 for details)")
        code = 1
    sys.stdout.flush()
    sys.exit(code)
