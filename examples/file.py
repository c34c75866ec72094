"""Speech emotion recognition of a recording with the ser-live Python API, two ways.

``score_file`` gives the utterances as ``ser-live --file PATH --speed 0`` logs them; feeding the Detector
20 ms chunks, as a microphone would deliver them, gives the same utterances and the provisional results
in between.

    python examples/file.py [PATH] [--model fast]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import soundfile as sf

from ser_live import Detector, Provisional, Utterance, score_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(Path(__file__).with_name("sample.flac")))
    parser.add_argument("--model", default="default", help="'default', 'fast' or a model file")
    args = parser.parse_args()

    print("score_file:")
    for u in score_file(args.path, model=args.model):
        print(f"  {u.start_s:6.2f}-{u.end_s:6.2f} s  {u.label:9} {u.confidence:.0%}")

    print("Detector.feed, 20 ms chunks:")
    audio, rate = sf.read(args.path, dtype="float32")  # (frames,) or (frames, channels), any rate
    detector = Detector(args.model)
    chunk = rate // 50
    events = []
    for i in range(0, len(audio), chunk):
        events += detector.feed(audio[i : i + chunk], rate)
    events += detector.flush()  # the end of the recording ends the utterance in progress
    for e in events:
        if isinstance(e, Provisional):
            print(f"  {e.end_s:6.2f} s  so far {e.label}")
        elif isinstance(e, Utterance):
            print(f"  {e.start_s:6.2f}-{e.end_s:6.2f} s  {e.label:9} {e.confidence:.0%}  ({e.latency_ms:.1f} ms after the end)")


if __name__ == "__main__":
    main()
