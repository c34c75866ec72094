"""Does the encoder describe emotion better with its activations quantised per utterance than with the fixed
activation scales of the published graph, which the shipped encoder keeps?

    python -m experiments.encoder_activations --data ../shared/data/ravdess ../shared/data/crema-d

The published Smart Turn graph is int8 with static quantisation: every activation is rounded with a scale fixed
at calibration. Cut down to blocks 1-3 as ``ser-train`` cuts it, its third block's frames end up far from the
float model's (cosine about 0.93; blocks 1 and 2: 0.997). :func:`per_utterance` removes those fixed roundings and
quantises the input of each product by the int8 weights from that input's own range (within cosine 0.998 of the
float model in every block, no slower on one core). Both encoders describe the clean clips, cut by the runtime's
segmenter (mean and sd of the frames, from the feature cache), under a plain logistic-regression head trained
on both corpora, as ``ser-train`` trains; scored per corpus in speaker-grouped CV (split seeds 0 and 1), on
sentences never heard and across corpora both ways. One line per split seed and encoder.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from experiments import probe

VARIANTS = ("fixed scales", "per utterance")


def float_activations(model) -> None:
    """Leave the activations of ``model`` (a QDQ int8 ``onnx.ModelProto``, changed in place) in float: each
    QuantizeLinear / DequantizeLinear pair on an activation is removed (the weights stay int8, dequantised on load)."""
    g = model.graph
    made_by = {o: n for n in g.node for o in n.output}
    alias = {n.output[0]: made_by[n.input[0]].input[0] for n in g.node
             if n.op_type == "DequantizeLinear" and n.input[0] in made_by and made_by[n.input[0]].op_type == "QuantizeLinear"}
    nodes = [n for n in g.node if n.op_type != "QuantizeLinear" and n.output[0] not in alias]
    for n in nodes:
        n.input[:] = [alias.get(x, x) for x in n.input]
    del g.node[:]
    g.node.extend(nodes)


def per_utterance(model) -> None:
    """Quantise the activations of ``model`` (a QDQ int8 ``onnx.ModelProto``, changed in place) per utterance.

    The fixed roundings are removed (:func:`float_activations`), and each MatMul by int8 weights becomes
    DynamicQuantizeLinear of its input (one per input: q, k and v share theirs), an integer product by the
    published int8 weights, unchanged, and a rescale by both scales. Other weights stay as published."""
    import onnx
    from onnx import helper

    float_activations(model)
    g = model.graph
    constants = {i.name for i in g.initializer}
    nodes = list(g.node)
    weights = {n.output[0]: n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] in constants}
    out: list = []
    quantised: set[str] = set()  # the new values' names end in _ser_*, which the published graph does not use
    for n in nodes:
        if n.op_type != "MatMul" or n.input[1] not in weights:
            out.append(n)
            continue
        a, y = n.input[0], n.output[0]
        w, w_scale, w_zero = weights[n.input[1]].input
        if a not in quantised:
            quantised.add(a)
            out.append(helper.make_node("DynamicQuantizeLinear", [a], [f"{a}_ser_q", f"{a}_ser_scale", f"{a}_ser_zero"]))
        out += [helper.make_node("MatMulInteger", [f"{a}_ser_q", w, f"{a}_ser_zero", w_zero], [f"{y}_ser_int"]),
                helper.make_node("Cast", [f"{y}_ser_int"], [f"{y}_ser_float"], to=onnx.TensorProto.FLOAT),
                helper.make_node("Mul", [f"{a}_ser_scale", w_scale], [f"{y}_ser_scale"]),
                helper.make_node("Mul", [f"{y}_ser_float", f"{y}_ser_scale"], [y])]
    used = {x for n in out for x in n.input}
    out = [n for n in out if n.op_type != "DequantizeLinear" or n.output[0] in used]
    used = {x for n in out for x in n.input}
    inits = [i for i in g.initializer if i.name in used]
    del g.node[:]
    g.node.extend(out)
    del g.initializer[:]
    g.initializer.extend(inits)
    onnx.checker.check_model(model)


def per_utterance_extractor(cache_dir: Path, blocks: tuple[int, ...] = probe.SMART_TURN_BLOCKS):
    """An extractor of the shipped encoder (blocks ``blocks``) with its activations quantised per utterance."""
    import onnx

    from ser_live.encoder import Encoder
    from ser_live.extractor import Extractor
    from ser_live.train import encoders, export
    from ser_live.train.cli import encoder_info

    derived = encoders.derived_path(probe.SMART_TURN, blocks, cache_dir)
    path = derived.with_name(derived.name.replace(".encoder.onnx", "-per-utterance.encoder.onnx"))
    if not path.is_file():
        model = onnx.load_from_string(encoders.derive(probe.SMART_TURN, encoders.obtain(probe.SMART_TURN, cache_dir), blocks))
        per_utterance(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        export.write_atomic(path, model.SerializeToString())
    return Extractor(Encoder(path), False, encoder_info(probe.SMART_TURN, blocks))


def main() -> None:
    args = probe.parser(__doc__, VARIANTS).parse_args()
    for name in args.variants:
        extractor = per_utterance_extractor(args.cache_dir) if name == "per utterance" else None
        e = probe.clean_embeddings(args.data, args.cache_dir, args.jobs, extractor=extractor)
        for seed in args.seeds:
            probe.report(partial(probe.head_predict, e.X, e.y), e, seed, f"activations {name}", args.jobs)


if __name__ == "__main__":
    main()
