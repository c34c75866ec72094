"""Speech emotion recognition from the microphone with the ser-live Python API.

The sounddevice callback only copies each block into a queue; the main loop feeds the Detector and
prints each utterance's emotion when it ends. Ctrl-C ends it (the utterance in progress is classified).

    python examples/microphone.py [--model fast]
"""

from __future__ import annotations

import argparse
import queue

import sounddevice as sd

from ser_live import Detector, Provisional, SpeechStart, Utterance

RATE = 16000  # ask the device for 16 kHz mono; the Detector takes any rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default', 'fast' or a model file")
    args = parser.parse_args()
    detector = Detector(args.model)
    blocks: queue.Queue = queue.Queue()

    def callback(indata, frames, time, status) -> None:
        blocks.put(indata.copy())  # (frames, 1) float32; the buffer is reused once this returns

    def show(events) -> None:
        for e in events:
            if isinstance(e, SpeechStart):
                print(f"{e.start_s:7.2f} s  speaking...")
            elif isinstance(e, Provisional):
                print(f"{e.end_s:7.2f} s  (so far: {e.label} {e.confidence:.0%})")
            elif isinstance(e, Utterance):
                print(f"{e.start_s:7.2f}-{e.end_s:.2f} s  {e.label} {e.confidence:.0%}")

    with sd.InputStream(samplerate=RATE, channels=1, dtype="float32", blocksize=RATE // 50, callback=callback):
        print("listening; Ctrl-C to stop")
        try:
            while True:
                show(detector.feed(blocks.get(), RATE))
        except KeyboardInterrupt:
            pass
    show(detector.flush())


if __name__ == "__main__":
    main()
