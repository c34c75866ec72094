"""``ser-live``: command-line entry point. Every user error is one line on stderr and exit 2."""

from __future__ import annotations

import os

from ser_live import process

process.pin_blas_threads()  # before numpy is first imported
process.keep_freed_memory()

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from ser_live.arguments import EXIT_OUTPUT_CLOSED, EXIT_USAGE, OneLineParser  # noqa: E402

# Nothing heavier at import: until main() defers Ctrl-C, a press raises KeyboardInterrupt (numpy and the
# rest load in run()).


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


MODEL_HELP = ("'default' (the shipped accurate model: two pretrained speech encoders, about 20 ms per 3 s utterance), "
              "'fast' (the shipped handcrafted-features model, about 1 ms per utterance and less accurate: for very "
              "large batch jobs and slow machines), or a model file whose JSON card sits beside it")


def add_segmenter_arguments(p: argparse.ArgumentParser) -> None:
    """The segmenter's options (``ser-live`` and ``ser-batch``), each defaulting to SegmenterConfig's."""
    from ser_live.segmenter import SegmenterConfig

    vad = p.add_argument_group("segmenter")
    d = SegmenterConfig()
    vad.add_argument("--vad-aggressiveness", type=int, choices=range(4), default=d.aggressiveness, help=f"WebRTC VAD mode 0-3 (default {d.aggressiveness})")
    vad.add_argument("--hangover-ms", type=int, default=d.hangover_ms, help=f"silence that ends an utterance (default {d.hangover_ms})")
    vad.add_argument("--min-utterance-ms", type=int, default=d.min_utterance_ms, help=f"shorter speech is ignored (default {d.min_utterance_ms})")
    vad.add_argument("--max-utterance-s", type=_positive, default=d.max_utterance_s, help=f"longer speech is cut into pieces (default {d.max_utterance_s})")


def segmenter_config(args: argparse.Namespace):
    """The SegmenterConfig of :func:`add_segmenter_arguments`' options; ValueError (a message for the
    user) when they do not fit together."""
    from ser_live.segmenter import SegmenterConfig

    d = SegmenterConfig()
    if args.hangover_ms < d.frame_ms:
        raise ValueError(f"--hangover-ms must be at least {d.frame_ms}")
    if args.min_utterance_ms < 0:
        raise ValueError("--min-utterance-ms must be 0 or more")
    if args.max_utterance_s * 1000 <= d.pad_ms + args.min_utterance_ms:
        raise ValueError(f"--max-utterance-s must be longer than --min-utterance-ms plus {d.pad_ms} ms")
    try:
        return SegmenterConfig(aggressiveness=args.vad_aggressiveness, hangover_ms=args.hangover_ms,
                               min_utterance_ms=args.min_utterance_ms, max_utterance_s=args.max_utterance_s)
    except ValueError as e:
        raise ValueError(f"invalid segmenter setting: {e}") from None


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="ser-live",
        description="Real-time speech emotion recognition from the microphone or from audio files.",
    )
    src = p.add_argument_group("input")
    src.add_argument("--file", nargs="+", metavar="PATH",
                     help="replay audio files or folders instead of the microphone: WAV, FLAC, OGG/Opus, MP3, AIFF, "
                     "M4A/AAC, MP4, WebM, MKV, ...")
    src.add_argument("--speed", type=_non_negative, default=1.0, help="replay pace: 1 real time (default), 4 four times faster, 0 as fast as possible")
    src.add_argument("--device", metavar="NAME|INDEX", help="input device (default: the system default)")
    src.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    src.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after this many seconds")
    src.add_argument("--session", choices=("per-file", "per-folder", "one"),
                     help="with --file, which files are one speaker, whose VAD gain and speaker adaptation carry on "
                     "from file to file: per-file (default: every file a new speaker), per-folder (the files of a "
                     "folder: one person's recordings per folder), one (all the files: one person's recordings)")
    out = p.add_argument_group("output")
    out.add_argument("--log", metavar="CSV", help="append one row per utterance to this CSV file")
    out.add_argument("--report", metavar="HTML",
                     help="when the session ends, write ser-report's page of its log (all of the --log file when "
                     "given) to this file, and the PNG timeline beside it")
    out.add_argument("--json", action="store_true", help="print one JSON object per utterance (the summary goes to stderr)")
    out.add_argument("--plain", action="store_true",
                     help="print one tab-separated line per utterance even on a terminal, after a header line: "
                     "source, start_s, end_s, emotion, confidence, latency_ms (the default when stdout is not a "
                     "terminal; messages and the summary go to stderr)")
    p.add_argument("--model", metavar="NAME|ONNX", help=MODEL_HELP)
    add_segmenter_arguments(p)
    return p


_interrupted_at_start_up = False


def _defer_interrupts() -> None:
    """Until the session installs its own handler, a Ctrl-C is remembered and acted on before the
    session starts (exit 130): raised as KeyboardInterrupt in the middle of imports and model loading,
    it could land in a weakref callback, where Python prints a traceback and carries on."""
    import signal

    def remember(signum, frame) -> None:
        global _interrupted_at_start_up
        _interrupted_at_start_up = True

    signal.signal(signal.SIGINT, remember)


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    sys.stderr.write(f"ser-live: {message}\n")
    return code


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.environ.get("SER_LIVE_DEBUG"):
        return _run(args, restore_signals=argv is not None)
    with process.quiet_native_stderr():  # native libraries' chatter must not break into the view or the output
        return _run(args, restore_signals=argv is not None)


def _run(args: argparse.Namespace, restore_signals: bool) -> int:
    import tempfile

    from ser_live.capture import CaptureError
    from ser_live.replay import expand_paths

    if args.list_devices:
        try:
            from ser_live.capture import list_devices

            print(list_devices())
            return 0
        except CaptureError as e:
            return _fail(str(e))
    if args.file is not None and args.device is not None:
        return _fail("--device is for the microphone; it cannot be combined with --file")
    if args.file is None and args.session is not None:
        return _fail("--session is for --file; the microphone is one session")
    if args.json and args.plain:
        return _fail("choose one of --json and --plain")
    try:
        segmenter = segmenter_config(args)
    except ValueError as e:
        return _fail(str(e))

    files = None
    if args.file is not None:
        files, missing = expand_paths(args.file)
        for m in missing:
            sys.stderr.write(f"ser-live: {m.source}: {m.message}\n")
        if not files:  # each path given has had its line
            return EXIT_USAGE
    else:
        missing = []
    if args.log and files and Path(args.log).resolve() in {f.resolve() for f in files}:
        return _fail(f"{args.log} is one of the audio files to replay; choose another log file")

    report_png = None
    if args.report is not None:  # before the session: a page that cannot be written is a usage error
        from ser_live.report import ReportError, check_outputs, png_beside

        report_png = png_beside(args.report)
        try:
            check_outputs([args.log] if args.log else [], args.report, report_png, files or ())
        except ReportError as e:
            return _fail(str(e))

    # the report is ser-report's page of a log: without --log, of one in a folder removed at the end
    scratch = tempfile.TemporaryDirectory(prefix="ser-live-") if args.report and not args.log else None
    log_path = os.path.join(scratch.name, "session.csv") if scratch is not None else args.log
    try:
        code = _session(args, files, segmenter, log_path, report_png, restore_signals)
    finally:
        if scratch is not None:
            scratch.cleanup()
    return max(code, 1 if missing else 0)


def _session(args: argparse.Namespace, files, segmenter, log_path: str | None, report_png,
             restore_signals: bool) -> int:
    """Load the model, open the log at ``log_path`` (if any), run the session and write its report (if
    asked); the exit code."""
    from ser_live.capture import CaptureError
    from ser_live.model import EmotionModel, ModelError
    from ser_live.models import resolve
    from ser_live.session import Options, Session
    from ser_live.session_log import LogError, SessionLog

    try:
        model = EmotionModel(resolve(args.model))
        log = SessionLog(log_path, model.labels) if log_path else None
    except (ModelError, LogError) as e:
        return _fail(str(e))

    view = "json" if args.json else "lines" if (args.plain or not sys.stdout.isatty()) else "live"
    opts = Options(model, files, args.device, args.speed, args.duration, log, view, segmenter,
                   session=args.session or "per-file")
    try:
        session = Session(opts)
    except CaptureError as e:
        if log is not None:
            log.close()
        return _fail(str(e))
    if _interrupted_at_start_up:
        if log is not None:
            log.close()
        return 130
    code = session.run(restore_signals=restore_signals)  # False run as a program: the process exits next
    if args.report is not None:
        code = max(code, _write_report(args.report, report_png, log_path, named=args.log is not None))
    return code


#: what the report calls the log of a session without --log (a temporary file)
UNNAMED_LOG = "this session (no --log)"


def _write_report(html_path: str, png_path, log_path: str, named: bool) -> int:
    """Write the report of the log at ``log_path`` as ``ser-report`` does (the messages on stderr); its exit
    status. ``named`` False: the log is temporary, the page and the messages call it UNNAMED_LOG."""
    from ser_live import report

    try:
        logs = [log_path if named else report.read_log(log_path, name=UNNAMED_LOG)]
    except report.ReportError as e:
        return _fail(str(e), 1)
    return report.write_and_tell(logs, html_path, png_path, prog="ser-live", tell=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """The ``ser-live`` command. Run as a program (``argv`` None), the process ends with
    ``os._exit`` once everything is written and flushed: the interpreter's teardown (numpy,
    onnxruntime, rich modules) does no useful work here and costs 0.1 s on an idle machine,
    up to 0.9 s on a loaded one, which would count against exiting within 1 s of Ctrl-C."""
    if argv is None:
        _defer_interrupts()
    try:
        code = run(argv)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # the reader of the output went away (``| head``): nothing more to say
        code = EXIT_OUTPUT_CLOSED
    except Exception as e:  # last resort: one line, not a traceback
        if os.environ.get("SER_LIVE_DEBUG"):
            raise
        sys.stderr.write(f"ser-live: unexpected error: {type(e).__name__}: {e} (set SER_LIVE_DEBUG=1 for details)\n")
        code = 1
    if argv is None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be delivered anyway
                pass
        os._exit(code)
    sys.exit(code)
