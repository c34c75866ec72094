"""Deterministic audio corruptions for training augmentation and robustness tests.

A :class:`Corruption` is applied to a clip's raw 16 kHz audio *before* the runtime's segmenter cuts it
and ``extract`` runs, exactly where a live microphone's noise, gain and channel would act. Every random
choice comes from a generator seeded by (corruption seed, copy number, clip file name), so the same
clip always gets the same corruption, in any process and any order.

Written in numpy (plus one scipy Butterworth filter for the telephone band, and soxr, already the
trainer's resampler, for speed): a change of speaking speed (tempo, pitch and formants together, as a
tape played faster: another talker), a noise floor at an SNR relative to the clip's active-speech level,
white / pink / babble noise, gain, band-limiting, a room's reverberation from a statistical impulse
response (below), and a lossy codec (Opus, through libsndfile, which soundfile already brings).
``audiomentations`` was considered; these few lines cost well under a millisecond per clip (against
~10 ms for decoding and features), need no new dependency, and let the SNR be set relative to the
*active speech* level rather than the whole clip's RMS, which for clips with a second of leading
silence (RAVDESS) would put the noise ~3-5 dB too low.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from ser_live.features import SAMPLE_RATE

NOISES = ("white", "pink", "babble")


def active_level(audio: np.ndarray, within_db: float = 30.0) -> float:
    """Mean power of the 20 ms frames within ``within_db`` of the loudest one (a P.56-like speech level)."""
    n = audio.size // 320
    if n == 0:
        return float(np.mean(np.square(audio, dtype=np.float64))) + 1e-20
    p = np.square(audio[: n * 320].astype(np.float64)).reshape(n, 320).mean(axis=1)
    keep = p >= p.max() * 10 ** (-within_db / 10)
    return float(p[keep].mean()) + 1e-20


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-power 1/f noise (spectrum shaped in the FFT domain, flat below 50 Hz)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spec /= np.sqrt(np.maximum(f, 50.0))
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x * x)) + 1e-20)


def babble(rng: np.random.Generator, n: int, pool: Sequence[str], load: Callable[[str], np.ndarray],
           talkers: int = 4) -> np.ndarray:
    """Unit-power babble: ``talkers`` clips from ``pool`` (other speakers), each looped to ``n`` samples
    from a random offset at its own active level, summed."""
    out = np.zeros(n)
    for path in rng.choice(np.asarray(pool), size=min(talkers, len(pool)), replace=False):
        x = load(str(path)).astype(np.float64)
        x = x / np.sqrt(active_level(x))
        x = np.resize(np.roll(x, -int(rng.integers(x.size))), n)
        out += x
    return out / (np.sqrt(np.mean(out * out)) + 1e-20)


def room_response(rng: np.random.Generator, rt60_s: float, drr_db: float) -> np.ndarray:
    """A synthetic room impulse response: the direct sound, then from 2.5 ms on a diffuse tail of Gaussian
    noise decaying by 60 dB in ``rt60_s`` (Polack's statistical model), scaled so that the direct sound is
    ``drr_db`` above the tail's energy.

    pyroomacoustics' image-source rooms were considered: for a training copy what matters is the decay
    time and the direct-to-reverberant ratio, which this draws directly, at ~1 ms per clip, with no
    geometry to sample and no dependency."""
    n = int(rt60_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-3.0 * np.log(10.0) * t / rt60_s)
    tail[: int(0.0025 * SAMPLE_RATE)] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / (np.sum(tail * tail) + 1e-20))
    tail[0] = 1.0
    return tail


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """``audio`` played ``factor`` times faster: ``1/factor`` of its length, pitch and formants ``factor`` times
    higher (Kaldi's speed perturbation)."""
    import soxr

    return soxr.resample(audio, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ")


def reverb(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``audio`` heard through ``rir``, with its tail (the output is ``rir.size - 1`` samples longer)."""
    from scipy.signal import fftconvolve

    return fftconvolve(audio, rir)


def opus(audio: np.ndarray, level: float) -> np.ndarray:
    """``audio`` encoded to Opus and decoded again, in memory (libsndfile; same length, no delay). ``level`` is
    libsndfile's compression level, 0 (about 260 kbps) to 1 (about 8 kbps); 0.95 gives about 20 kbps, a
    voice call's or a voice message's rate."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(audio, np.float32), SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)
    buf.seek(0)
    return sf.read(buf, dtype="float32")[0]


_TELEPHONE_SOS = None


def telephone(audio: np.ndarray) -> np.ndarray:
    """300-3400 Hz band (4th-order Butterworth band-pass, causal, as a channel would be)."""
    global _TELEPHONE_SOS
    from scipy.signal import butter, sosfilt

    if _TELEPHONE_SOS is None:
        _TELEPHONE_SOS = butter(4, [300.0, 3400.0], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(_TELEPHONE_SOS, audio)


@dataclass(frozen=True)
class Corruption:
    """One deterministic corruption. Ranges are (low, high), drawn uniformly per clip; equal ends fix it.

    Order: speed, gain, a room's reverberation, band-limiting, noise at ``snr_db`` relative to the (gained,
    filtered) clip's active speech level, an absolute microphone floor (white, ``floor_dbfs``), then a lossy
    codec (``opus``, with probability ``codec_p``).
    The room draws come only when ``reverb_p`` > 0, the speed draws only when ``speed_p`` > 0, the codec's
    only when ``codec_p`` > 0, and only then are their fields in :meth:`to_dict` (the feature cache key), so
    corruptions without them are drawn and cached as before they existed. No clipping: the runtime
    works on float audio, and a gain test should test the level, not a clipper.
    """

    name: str
    noises: tuple[str, ...] = ()  # drawn uniformly per clip; () = no relative noise
    snr_db: tuple[float, float] = (20.0, 20.0)
    gain_db: tuple[float, float] = (0.0, 0.0)
    floor_dbfs: tuple[float, float] | None = None
    telephone_p: float = 0.0  # probability of the 300-3400 Hz band
    seed: int = 0
    copy: int = 0
    babble_talkers: int = 4
    reverb_p: float = 0.0  # probability of a room (``room_response``)
    rt60_s: tuple[float, float] = (0.3, 0.8)
    drr_db: tuple[float, float] = (0.0, 10.0)
    speed_p: float = 0.0  # probability of a speed change (``change_speed``), by a factor drawn from ``speed``
    speed: tuple[float, float] = (0.9, 1.1)
    codec_p: float = 0.0  # probability of the Opus codec (``opus``), at a compression level drawn from ``opus_level``
    opus_level: tuple[float, float] = (0.9, 1.0)

    def __post_init__(self) -> None:
        unknown = set(self.noises) - set(NOISES)
        if unknown:
            raise ValueError(f"unknown noise type(s): {sorted(unknown)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.reverb_p <= 0.0:
            del d["reverb_p"], d["rt60_s"], d["drr_db"]
        if self.speed_p <= 0.0:
            del d["speed_p"], d["speed"]
        if self.codec_p <= 0.0:
            del d["codec_p"], d["opus_level"]
        return d

    def needs_pool(self) -> bool:
        return "babble" in self.noises

    def rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.copy, zlib.crc32(key.encode())])

    def apply(self, audio: np.ndarray, key: str, pool: Sequence[str] = (),
              load: Callable[[str], np.ndarray] | None = None) -> np.ndarray:
        """The corrupted clip (float32). ``key`` (the file name) seeds the draws; ``pool`` and ``load``
        give babble talkers (other speakers' clips)."""
        rng = self.rng(key)
        x = np.asarray(audio, dtype=np.float64)
        if self.speed_p > 0.0 and rng.uniform() < self.speed_p:
            x = change_speed(x, rng.uniform(*self.speed))
        x = x * 10 ** (rng.uniform(*self.gain_db) / 20)
        if self.reverb_p > 0.0 and rng.uniform() < self.reverb_p:
            x = reverb(x, room_response(rng, rng.uniform(*self.rt60_s), rng.uniform(*self.drr_db)))
        if rng.uniform() < self.telephone_p:
            x = telephone(x)
        if self.noises:
            kind = self.noises[int(rng.integers(len(self.noises)))]
            snr = rng.uniform(*self.snr_db)
            if kind == "white":
                n = rng.standard_normal(x.size)
            elif kind == "pink":
                n = pink(rng, x.size)
            else:
                if not pool or load is None:
                    raise ValueError("babble needs a pool of other speakers' clips")
                n = babble(rng, x.size, pool, load, self.babble_talkers)
            x = x + n * np.sqrt(active_level(x) / 10 ** (snr / 10))
        if self.floor_dbfs is not None:
            x = x + rng.standard_normal(x.size) * 10 ** (rng.uniform(*self.floor_dbfs) / 20)
        if self.codec_p > 0.0 and rng.uniform() < self.codec_p:
            x = opus(x, rng.uniform(*self.opus_level))
        return x.astype(np.float32)


#: what ``ser-train`` trains on besides the clean clips (``--augment``): each copy is every clip again,
#: with a microphone-like floor, white, pink or babble noise (4 other speakers' clips) at 5-35 dB SNR,
#: -20..+10 dB gain, and a telephone band one time in two (the proportion chosen in reports/ablation.md)
def training_copies(copies: int, seed: int = 0) -> list[Corruption]:
    return [
        Corruption(name="train-aug", noises=("white", "pink", "babble"), snr_db=(5.0, 35.0), gain_db=(-20.0, 10.0),
                   floor_dbfs=(-65.0, -45.0), telephone_p=0.5, seed=1000 + seed, copy=k)
        for k in range(copies)
    ]


#: the robustness conditions of the evaluation report (applied to held-out clips only)
def test_conditions(seed: int = 7) -> dict[str, Corruption]:
    return {
        "floor -60 dBFS": Corruption(name="floor60", floor_dbfs=(-60.0, -60.0), seed=seed),
        "white 15 dB": Corruption(name="white15", noises=("white",), snr_db=(15.0, 15.0), seed=seed),
        "babble 15 dB": Corruption(name="babble15", noises=("babble",), snr_db=(15.0, 15.0), seed=seed),
        "gain +20 dB": Corruption(name="gain+20", gain_db=(20.0, 20.0), seed=seed),
        "gain -20 dB": Corruption(name="gain-20", gain_db=(-20.0, -20.0), seed=seed),
        "telephone 300-3400 Hz": Corruption(name="telephone", telephone_p=1.0, seed=seed),
        "room RT60 0.6 s, DRR 3 dB": Corruption(name="room", reverb_p=1.0, rt60_s=(0.6, 0.6), drr_db=(3.0, 3.0), seed=seed),
        "Opus ~20 kbps": Corruption(name="opus", codec_p=1.0, opus_level=(0.95, 0.95), seed=seed),
    }
