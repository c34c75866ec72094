"""The shipped ser-live model: ``DEFAULT_MODEL`` is the ONNX file, its card is beside it (same stem, .json)."""

from pathlib import Path

DEFAULT_MODEL: Path = Path(__file__).with_name("ser-default.onnx")
