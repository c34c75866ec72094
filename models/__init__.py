"""The shipped ser-live models, by short name: ``default`` (two pretrained speech encoders under an MLP) and
``fast`` (handcrafted features under an MLP, for very large batch jobs and slow machines). Each is an
ONNX file with its JSON card beside it (same stem, .json); the default model's encoder file sits beside it too."""

from pathlib import Path

_HERE = Path(__file__).parent
MODELS: dict[str, Path] = {"default": _HERE / "ser-default.onnx", "fast": _HERE / "ser-fast.onnx"}
DEFAULT_MODEL: Path = MODELS["default"]
FAST_MODEL: Path = MODELS["fast"]


def resolve(name_or_path: str | None) -> Path:
    """A shipped model's path by its short name (None: the default), else the given path."""
    if name_or_path is None:
        return DEFAULT_MODEL
    return MODELS.get(name_or_path, Path(name_or_path))
