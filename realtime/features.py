"""Utterance-level acoustic features shared by the live runtime and the trainer.

``extract`` maps a mono 16 kHz utterance to a fixed-length float32 vector of
functionals (mean, std, percentiles, slopes) over frame-level descriptors:
log-mel bands, MFCCs and their deltas, spectral shape, chroma, energy
dynamics, F0 and voice quality.  Pure numpy: one 25 ms / 10 ms STFT feeds one
matrix product (mel, chroma and spectral-moment columns); F0 comes from a
normalised autocorrelation of a 4 kHz-decimated signal computed from its power
spectrum.  All constant matrices are built once at import.  Every descriptor
is relative to the utterance's own level, so the vector does not depend on
input gain.

What version 6 computes, and why:

- **A synthetic white floor** ``_FLOOR_DB`` below the utterance level is added to both spectra before
  any descriptor is computed, so a studio's digital silence and a microphone's hiss below that floor
  look the same; the zero-crossing rate is estimated from the floored spectrum, not the waveform.
- **Edges left out**: the descriptors are computed from ``_EDGE_PAD`` (150 ms) before the first to
  ``_EDGE_PAD`` after the last 10 ms frame within ``_EDGE_DB`` (12 dB) of the utterance's loudest.
  WebRTC VAD hears other voices as speech, so over background talk its cut starts and ends on the
  other talkers; those edges, far quieter than the speaker, do not count. The price: an utterance that
  rises by more than 12 dB without a pause is described by its loud part.
- **Active frames** are those within ``_ACTIVE_DB`` (20 dB) of the loudest: the statistics leave out
  the floor and most of what other talkers fill the quieter frames with.
- **Voicing**: the voiced fraction and the voiced-segment rate count against the frames that may be
  voiced (within ``_VOICED_DB``, 25 dB, of the loudest pitch frame), so the fraction stays within 1.
- **Speed**: the pitch track moves in 25 ms hops over a lag grid of one 4 kHz sample (a parabolic peak
  refines it), and the main spectrum is reduced to its projections block by block while it is in cache.

``FEATURE_VERSION`` changes whenever the output does; a model records the version it was trained on and
the runtime refuses another. What each version changed, and what it cost or gained, is in CHANGELOG.md.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE: int = 16000
FEATURE_VERSION: int = 6

# Main analysis: 25 ms periodic Hann window, 10 ms hop, FFT of the window length.
_WIN = 400
_HOP = 160
_NFFT = 400
_N_MELS = 40
_N_MFCC = 20  # c0 is computed and dropped
_FLOOR_DB = 30.0  # synthetic white floor: total power this many dB below the level reference
_TOP_DB = 60.0  # log-mel floor below the utterance's loudest band value
_ACTIVE_DB = 20.0  # active frames: within this many dB of the loudest frame
_MIN_ACTIVE = 5  # fewer active frames than this: use all frames
_EDGE_DB = 12.0  # the utterance's edges: 10 ms frames this many dB below the loudest are left out ...
_EDGE_PAD = 0.15  # ... except this many seconds before the first / after the last frame within _EDGE_DB
_LEVEL_PERCENTILE = 95.0  # level reference: this percentile of frame energy
_PEAK_DB = 25.0  # energy-envelope peaks counted for the rate must be this close to max
_EPS = 1e-12
_STFT_BLOCK = 64  # frames per FFT call: a block's frames and spectra fit in L2

# Pitch analysis: decimate to 4 kHz, 50 ms Hann window, 25 ms hop, 0-1.5 kHz band.
_DECIM = 4
_PITCH_SR = SAMPLE_RATE // _DECIM
_PITCH_WIN = 200
_PITCH_HOP = 100
_PITCH_NFFT = 256
_PITCH_BAND_HZ = (1000.0, 1500.0)  # full weight below the first, cos^2 taper to zero at the second
_LAG_STEP = 1.0  # lag grid in 4 kHz samples (0.25 ms)
_F0_MIN = 75.0
_F0_MAX = 600.0
_VOICING_THRESHOLD = 0.45  # normalised autocorrelation peak height
_VOICED_DB = 25.0  # voiced frames must be within this many dB of the loudest pitch frame
_OCTAVE_COST = 0.03  # per octave of lag, favours shorter lags (cf. Praat's octave cost)
_ST_REF_HZ = 55.0

_CHROMA_NAMES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
_SPECTRAL_NAMES = (
    "centroid_hz",
    "spread_hz",
    "rolloff85_hz",
    "flatness_db",
    "flux_db",
    "zcr",
    "alpha_ratio_db",
    "hammarberg_db",
    "slope_db_per_khz",
)
_ENERGY_NAMES = (
    "energy_db_mean",
    "energy_db_std",
    "energy_db_p10",
    "energy_db_p50",
    "energy_db_p90",
    "energy_db_range",
    "energy_db_delta_abs_mean",
    "energy_frac_within_20db",
    "energy_peak_rate_hz",
)
_PITCH_NAMES = (
    "f0_semitone_mean",
    "f0_semitone_std",
    "f0_semitone_p10",
    "f0_semitone_p50",
    "f0_semitone_p90",
    "f0_semitone_range",
    "f0_semitone_delta_abs_mean",
    "f0_semitone_slope_per_s",
    "voiced_fraction",
    "voiced_segment_rate_hz",
    "hnr_db_mean",
    "hnr_db_std",
    "jitter_rel",
    "shimmer_db",
)


# ---------------------------------------------------------------- constants


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


_F_SP = 200.0 / 3  # Slaney mel scale: linear below 1 kHz, logarithmic above
_MIN_LOG_HZ = 1000.0
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    log_part = _MIN_LOG_HZ / _F_SP + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    min_log_mel = _MIN_LOG_HZ / _F_SP
    return np.where(m >= min_log_mel, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - min_log_mel)), _F_SP * m)


def _mel_edges(sr: int, n_mels: int) -> np.ndarray:
    """Band edge/centre frequencies, shape (n_mels + 2,)."""
    return _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))


def mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_mels, n_fft//2 + 1), as librosa's default."""
    fft_freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    mel_f = _mel_edges(sr, n_mels)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II, shape (n_in, n_out), as scipy's dct(type=2, norm='ortho')."""
    n = np.arange(n_in)
    m = np.cos(np.pi / n_in * (n[:, None] + 0.5) * np.arange(n_out)[None, :]) * np.sqrt(2.0 / n_in)
    m[:, 0] /= np.sqrt(2.0)
    return m


def _chroma_filterbank(freqs: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """Soft pitch-class weights, shape (n_bins, 12), C first.

    Each bin spreads its power over the 12 classes with a Gaussian in circular
    semitone distance (at least one semitone wide, wider where the bin itself
    spans several semitones), weighted by a Gaussian over octaves centred on
    C5 with two octaves' width, as librosa's chroma filters.
    """
    valid = freqs >= 50.0
    f = np.where(valid, freqs, 50.0)
    semis = 12.0 * np.log2(f / 16.351597831287414)  # semitones above C0
    half_bin = sr / n_fft / 2
    bin_width = 12.0 * np.log2((f + half_bin) / (f - half_bin))
    sigma = np.maximum(1.0, bin_width / 2)
    d = (semis[:, None] - np.arange(12)[None, :] + 6.0) % 12.0 - 6.0
    w = np.exp(-0.5 * (d / sigma[:, None]) ** 2)
    w /= w.sum(axis=1, keepdims=True)
    octave_weight = np.exp(-0.5 * ((semis / 12.0 - 5.0) / 2.0) ** 2)
    return w * (octave_weight * valid)[:, None]


def _lowpass_taps(cutoff_hz: float, n_taps: int, sr: int) -> np.ndarray:
    """Hamming-windowed sinc low-pass with unit DC gain (odd n_taps, linear phase)."""
    n = np.arange(n_taps) - (n_taps - 1) / 2
    h = np.sinc(2.0 * cutoff_hz / sr * n) * np.hamming(n_taps)
    return h / h.sum()


def _cosine_matrix(n_fft: int, lags: np.ndarray, band_weight: np.ndarray) -> np.ndarray:
    """C with (P @ C)[:, j] = autocorrelation at lag lags[j] of the band-weighted spectrum P."""
    k = np.arange(n_fft // 2 + 1)
    c = np.cos(2.0 * np.pi * np.outer(k, lags) / n_fft) * (2.0 / n_fft)
    c[0] /= 2.0
    c[-1] /= 2.0
    return c * band_weight[:, None]


_WINDOW = _periodic_hann(_WIN)
_FREQS = np.fft.rfftfreq(_NFFT, 1.0 / SAMPLE_RATE)
_BIN_HZ = SAMPLE_RATE / _NFFT
_MEL_FB = mel_filterbank(SAMPLE_RATE, _NFFT, _N_MELS)
_MEL_CENTRES = _mel_edges(SAMPLE_RATE, _N_MELS)[1:-1]
_MEL_AREA = _MEL_FB.sum(axis=1)  # undoes Slaney normalisation: band energies sum to the total
_DCT = _dct_matrix(_N_MELS, _N_MFCC)[:, 1:]


_FLAT_MELS = (_MEL_CENTRES >= 100.0) & (_MEL_CENTRES <= 7000.0)
_SLOPE_MELS = (_MEL_CENTRES >= 50.0) & (_MEL_CENTRES <= 5000.0)


def _band(lo: float, hi: float) -> np.ndarray:
    return ((_FREQS >= lo) & (_FREQS < hi)).astype(np.float64)


# One matrix product gives: mel bands | chroma | total, sum f, sum f^2 | alpha-ratio bands.
_PROJ = np.ascontiguousarray(
    np.column_stack(
        [
            _MEL_FB.T,
            _chroma_filterbank(_FREQS, SAMPLE_RATE, _NFFT),
            np.ones_like(_FREQS),
            _FREQS,
            _FREQS**2,
            _band(50.0, 1000.0),
            _band(1000.0, 5000.0),
            _MEL_FB[_FLAT_MELS].mean(axis=0),
        ]
    )
)
_CHROMA_COLS = slice(_N_MELS, _N_MELS + 12)
_TOTAL, _SUM_F, _SUM_F2, _ALPHA_LO, _ALPHA_HI, _FLAT_LIN = range(_N_MELS + 12, _N_MELS + 18)
_HAMM_LO = slice(1, int(2000 / _BIN_HZ))  # (0, 2) kHz
_HAMM_HI = slice(int(2000 / _BIN_HZ), int(5000 / _BIN_HZ))  # [2, 5) kHz
_slope_khz = np.where(_SLOPE_MELS, _MEL_CENTRES / 1000.0 - (_MEL_CENTRES[_SLOPE_MELS] / 1000.0).mean(), 0.0)
# One matrix product of the log-mel frames gives: MFCCs | mean over the flatness bands | slope.
_LOGMEL_PROJ = np.ascontiguousarray(
    np.column_stack([_DCT, _FLAT_MELS / np.count_nonzero(_FLAT_MELS), _slope_khz / np.sum(_slope_khz**2)])
)
_N_CEP = _N_MFCC - 1
_ROLLOFF_HZ = np.concatenate([[0.0], _MEL_CENTRES])
_CUM_AREA = np.triu(np.ones((_N_MELS, _N_MELS))) * _MEL_AREA[:, None]  # mel projections -> cumulative band energy
_FLAT_LOG, _SLOPE = _N_CEP, _N_CEP + 1
_BAND_MEAN = np.full(_N_MELS, 1.0 / _N_MELS)  # x @ _BAND_MEAN: mean over the mel bands
_PROJ_FLOOR = _PROJ.sum(axis=0) / _FREQS.size  # projections of a white floor of unit total power

_DECIM_TAPS = _lowpass_taps(2000.0, 37, SAMPLE_RATE)
_SMOOTH_KERNEL = _periodic_hann(12)[1:] / _periodic_hann(12)[1:].sum()  # energy envelope for the peak rate
_PITCH_WINDOW = _periodic_hann(_PITCH_WIN)
_pitch_freqs = np.fft.rfftfreq(_PITCH_NFFT, 1.0 / _PITCH_SR)
_PITCH_BINS = int(np.searchsorted(_pitch_freqs, _PITCH_BAND_HZ[1]))
_taper = np.clip((_pitch_freqs - _PITCH_BAND_HZ[0]) / (_PITCH_BAND_HZ[1] - _PITCH_BAND_HZ[0]), 0.0, 1.0)
_PITCH_BAND = np.cos(0.5 * np.pi * _taper) ** 2
# Candidate lags (in 4 kHz samples) from 1/F0_MAX to 1/F0_MIN, one guard step either side.
_LAGS = np.arange(
    np.floor(_PITCH_SR / _F0_MAX / _LAG_STEP) - 1, np.ceil(_PITCH_SR / _F0_MIN / _LAG_STEP) + 2
) * _LAG_STEP
_AC_MATRIX = np.ascontiguousarray(
    _cosine_matrix(_PITCH_NFFT, np.concatenate([[0.0], _LAGS]), _PITCH_BAND)[:_PITCH_BINS]
)
_win_ac = (np.abs(np.fft.rfft(_PITCH_WINDOW, _PITCH_NFFT)) ** 2) @ _cosine_matrix(
    _PITCH_NFFT, np.concatenate([[0.0], _LAGS]), np.ones_like(_pitch_freqs)
)
_WINDOW_AC = _win_ac[1:] / _win_ac[0]
_AC_FLOOR = _AC_MATRIX.sum(axis=0)  # autocorrelation of a unit white floor per bin
_LAG_COST = _OCTAVE_COST * np.log2(_F0_MIN * _LAGS / _PITCH_SR)


def _build_names() -> tuple[str, ...]:
    cep = range(1, _N_MFCC)
    return (
        tuple(f"logmel{i}_mean" for i in range(_N_MELS))
        + tuple(f"logmel{i}_std" for i in range(_N_MELS))
        + tuple(f"mfcc{i}_mean" for i in cep)
        + tuple(f"mfcc{i}_std" for i in cep)
        + tuple(f"mfcc{i}_delta_std" for i in cep)
        + tuple(f"{s}_mean" for s in _SPECTRAL_NAMES)
        + tuple(f"{s}_std" for s in _SPECTRAL_NAMES)
        + tuple(f"chroma_{c}_mean" for c in _CHROMA_NAMES)
        + _ENERGY_NAMES
        + _PITCH_NAMES
    )


FEATURE_NAMES: tuple[str, ...] = _build_names()
FEATURE_SIZE: int = len(FEATURE_NAMES)


def feature_params() -> dict:
    """JSON-serialisable description of the feature computation (for the model card)."""
    return {
        "feature_version": FEATURE_VERSION,
        "feature_size": FEATURE_SIZE,
        "sample_rate": SAMPLE_RATE,
        "stft": {"win_length": _WIN, "hop_length": _HOP, "n_fft": _NFFT, "window": "hann (periodic)", "center": False},
        "level": {
            "reference": f"p{_LEVEL_PERCENTILE:g} of frame energy",
            "active_frames_within_db": _ACTIVE_DB,
            "min_active_frames": _MIN_ACTIVE,
            "log_mel_top_db": _TOP_DB,
            "synthetic_white_floor_db": _FLOOR_DB,
            "edge_trim_db": _EDGE_DB,
            "edge_pad_s": _EDGE_PAD,
        },
        "mel": {"n_mels": _N_MELS, "fmin": 0.0, "fmax": SAMPLE_RATE / 2, "htk": False, "norm": "slaney"},
        "mfcc": {"n_mfcc": _N_MFCC, "dct": "type 2, ortho", "dropped": ["c0"], "delta": "5-frame regression"},
        "chroma": {"n_chroma": 12, "input": "power spectrum", "frame_norm": "max"},
        "spectral": {
            "moments": "power-weighted centroid/spread",
            "rolloff": "85% of energy, from mel band energies",
            "flatness_hz": [100.0, 7000.0],
            "flux": "mean abs change of mean-removed log-mel (dB)",
            "alpha_ratio_hz": [[50.0, 1000.0], [1000.0, 5000.0]],
            "hammarberg_hz": [[0.0, 2000.0], [2000.0, 5000.0]],
            "slope": "least-squares dB/kHz over log-mel bands centred 50-5000 Hz",
            "zcr": "Rice estimate from the power spectrum, 2 sqrt(E[f^2]) / sr",
        },
        "pitch": {
            "method": "normalised autocorrelation from the power spectrum, window-corrected, parabolic peak",
            "sample_rate": _PITCH_SR,
            "win_length": _PITCH_WIN,
            "hop_length": _PITCH_HOP,
            "n_fft": _PITCH_NFFT,
            "band_hz": list(_PITCH_BAND_HZ),
            "lag_step_s": _LAG_STEP / _PITCH_SR,
            "f0_min_hz": _F0_MIN,
            "f0_max_hz": _F0_MAX,
            "voicing_threshold": _VOICING_THRESHOLD,
            "voiced_within_db": _VOICED_DB,
            "octave_cost": _OCTAVE_COST,
            "semitone_ref_hz": _ST_REF_HZ,
        },
        "energy_peak_within_db": _PEAK_DB,
        "names": list(FEATURE_NAMES),
    }


# ---------------------------------------------------------------- helpers


def _frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Read-only strided (n_frames, win) view of a contiguous float64 x with at least win samples."""
    n_frames = 1 + (x.size - win) // hop
    view = np.ndarray((n_frames, win), np.float64, buffer=x, strides=(hop * 8, 8))
    view.flags.writeable = False
    return view


def _power(spec: np.ndarray) -> np.ndarray:
    """|spec|^2 of a C-contiguous complex128 array (squares it in place)."""
    parts = spec.view(np.float64)
    np.square(parts, out=parts)
    return parts[:, 0::2] + parts[:, 1::2]


def _percentiles(a: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Linear-interpolated percentiles of a non-empty 1-D array (np.percentile, less overhead:
    the few positions are scalars)."""
    s = np.sort(a)
    last = s.size - 1
    out = []
    for q in qs:
        pos = q / 100.0 * last
        lo = int(pos)
        v = s[lo]
        out.append(v + (s[min(lo + 1, last)] - v) * (pos - lo))
    return out


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of a 2-D array with at least one row."""
    n = x.shape[0]
    mean = np.add.reduce(x, axis=0) / n
    return mean, np.sqrt(np.maximum(np.add.reduce(x * x, axis=0) / n - mean * mean, 0.0))


def _mean(a: np.ndarray) -> float:
    """Mean of a 1-D array, 0 if empty (ndarray.mean's Python wrapper costs more than the sum here)."""
    return float(np.add.reduce(a)) / a.size if a.size else 0.0


def _sd(a: np.ndarray, mean: float) -> float:
    """Population standard deviation of a non-empty 1-D array with the given mean."""
    d = a - mean
    return float(np.sqrt(np.add.reduce(d * d) / a.size))


def _delta(x: np.ndarray) -> np.ndarray:
    """5-frame regression delta along axis 0 with edge padding."""
    p = np.concatenate([x[:1], x[:1], x, x[-1:], x[-1:]], axis=0)
    return (p[3:-1] - p[1:-3] + 2.0 * (p[4:] - p[:-4])) / 10.0


def _stft_blocks(x: np.ndarray, window: np.ndarray, hop: int, n_fft: int):
    """(frame slice, power spectra) of consecutive blocks of frames, small enough to stay in cache
    while the caller reduces them."""
    frames = _frames(x, window.size, hop)
    for i in range(0, frames.shape[0], _STFT_BLOCK):
        block = frames[i : i + _STFT_BLOCK]
        yield slice(i, i + block.shape[0]), _power(np.fft.rfft(block * window, n_fft))


def _main_spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 25 ms frame: the _PROJ projections of the power spectrum, and the peak bin power in
    0-2 and 2-5 kHz (Hammarberg index)."""
    n_frames = 1 + (x.size - _WIN) // _HOP
    q = np.empty((n_frames, _PROJ.shape[1]))
    peaks = np.empty((n_frames, 2))
    for rows, power in _stft_blocks(x, _WINDOW, _HOP, _NFFT):
        np.matmul(power, _PROJ, out=q[rows])
        power[:, _HAMM_LO].max(axis=1, out=peaks[rows, 0])
        power[:, _HAMM_HI].max(axis=1, out=peaks[rows, 1])
    return q, peaks


def trim_edges(x: np.ndarray) -> np.ndarray:
    """``x`` from _EDGE_PAD before its first to _EDGE_PAD after its last 10 ms frame within _EDGE_DB of the loudest."""
    hop = SAMPLE_RATE // 100
    n = x.size // hop
    if n == 0:
        return x
    f = x[: n * hop].reshape(n, hop)
    e = np.einsum("ij,ij->i", f, f)
    keep = np.flatnonzero(e >= e.max() * 10.0 ** (-_EDGE_DB / 10.0))
    pad = int(_EDGE_PAD * SAMPLE_RATE)
    return x[max(keep[0] * hop - pad, 0) : min((keep[-1] + 1) * hop + pad, x.size)]


def _db(a: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(a + _EPS)


def _active_mask(energy_db: np.ndarray, within_db: float) -> np.ndarray:
    mask = energy_db >= -within_db
    if np.count_nonzero(mask) < min(_MIN_ACTIVE, energy_db.size):
        mask[:] = True
    return mask


def _rolloff(mel: np.ndarray, fraction: float = 0.85) -> np.ndarray:
    """Roll-off frequency from cumulative mel band energies (mel: Slaney-normalised projections), interpolated."""
    rows = np.arange(mel.shape[0])
    cum = mel @ _CUM_AREA  # cum[:, j] = energy of bands 0..j
    target = fraction * cum[:, -1]
    j = np.argmax(cum >= target[:, None], axis=1)  # cum is non-decreasing and ends at the total > target
    cur = cum[rows, j]
    prev = cur - mel[rows, j] * _MEL_AREA[j]
    f_prev, f_cur = _ROLLOFF_HZ[j], _ROLLOFF_HZ[j + 1]
    return f_prev + np.minimum(np.maximum((target - prev) / (cur - prev + _EPS), 0.0), 1.0) * (f_cur - f_prev)


def _spectral(q: np.ndarray, hamm_max: np.ndarray, logmel: np.ndarray, logmel_proj: np.ndarray) -> np.ndarray:
    """Per-frame spectral shape descriptors, shape (n_frames, 9), in _SPECTRAL_NAMES order.

    q: level-normalised projections (_PROJ columns); hamm_max: level-normalised peak bin
    power in 0-2 and 2-5 kHz; logmel: floored log-mel (dB); logmel_proj: logmel @ _LOGMEL_PROJ.
    The zero-crossing rate is Rice's estimate from the floored spectrum, 2 sqrt(E[f^2]) / sr,
    so noise moves it no more than it moves the spectrum.
    """
    out = np.empty((q.shape[0], len(_SPECTRAL_NAMES)))
    total = q[:, _TOTAL] + _EPS
    centroid = np.divide(q[:, _SUM_F], total, out=out[:, 0])
    m2 = q[:, _SUM_F2] / total
    np.sqrt(np.maximum(m2 - centroid**2, 0.0), out=out[:, 1])
    out[:, 2] = _rolloff(q[:, :_N_MELS])
    out[:, 3] = logmel_proj[:, _FLAT_LOG] - _db(q[:, _FLAT_LIN])
    diff = logmel[1:] - logmel[:-1]
    diff -= (diff @ _BAND_MEAN)[:, None]  # change of the mean-removed log-mel
    out[0, 4] = 0.0
    out[1:, 4] = np.abs(diff, out=diff) @ _BAND_MEAN
    out[:, 5] = 2.0 * np.sqrt(m2) / SAMPLE_RATE
    out[:, 6] = _db(q[:, _ALPHA_LO]) - _db(q[:, _ALPHA_HI])
    out[:, 7] = _db(hamm_max[:, 0]) - _db(hamm_max[:, 1])
    out[:, 8] = logmel_proj[:, _SLOPE]
    return out


def _energy_features(e_db: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Dynamics of frame energy in dB re the loudest frame, in _ENERGY_NAMES order."""
    ea = e_db[active]
    p10, p50, p90 = _percentiles(ea, (10.0, 50.0, 90.0))
    smooth = np.convolve(np.maximum(e_db, -_ACTIVE_DB), _SMOOTH_KERNEL, mode="same")
    mid = smooth[1:-1]
    n_peaks = np.count_nonzero((mid > smooth[:-2]) & (mid >= smooth[2:]) & (mid > -_PEAK_DB))
    idx = np.flatnonzero(active)
    span_s = (idx[-1] - idx[0] + 1) * _HOP / SAMPLE_RATE
    delta = np.abs(e_db[1:] - e_db[:-1])[active[1:]]
    mean = _mean(ea)
    return np.array(
        [
            mean,
            _sd(ea, mean),
            p10,
            p50,
            p90,
            p90 - p10,
            _mean(delta),
            np.count_nonzero(ea >= -20.0) / ea.size,
            n_peaks / span_s,
        ]
    )


def _decimate(x: np.ndarray) -> np.ndarray:
    """Low-pass (2 kHz) and keep every 4th sample, polyphase: 16 kHz -> 4 kHz."""
    taps = _DECIM_TAPS
    delay = (taps.size - 1) // 2
    n_out = (x.size + _DECIM - 1) // _DECIM
    y = np.zeros(n_out)
    for phase in range(_DECIM):
        a, b = divmod(delay - phase, _DECIM)
        part = np.convolve(x[b::_DECIM], taps[phase::_DECIM])[a : a + n_out]  # full convolution: zero tail
        y[: part.size] += part
    return y


def _pitch_track(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 20 ms pitch frame: F0 (Hz), normalised autocorrelation peak, band energy (dB re max)."""
    y = _decimate(x)
    if y.size < _PITCH_WIN:
        y = np.concatenate([y, np.zeros(_PITCH_WIN - y.size)])
    power = _power(np.fft.rfft(_frames(y, _PITCH_WIN, _PITCH_HOP) * _PITCH_WINDOW, _PITCH_NFFT))[:, :_PITCH_BINS]
    energy = power @ _AC_MATRIX[:, 0]
    # the same synthetic white floor as the main analysis, relative to this band's level
    floor = _percentiles(energy, (_LEVEL_PERCENTILE,))[0] * 10.0 ** (-_FLOOR_DB / 10.0) / _AC_MATRIX[:, 0].sum()
    energy = energy + floor * _AC_MATRIX[:, 0].sum()
    e_db = _db(energy / (energy.max() + _EPS))
    f0 = np.zeros(energy.size)
    peak = np.zeros(energy.size)
    cand = e_db >= -_VOICED_DB
    if not cand.any() or energy.max() <= 0.0:
        return f0, peak, e_db
    ac = power[cand] @ _AC_MATRIX + floor * _AC_FLOOR
    r = ac[:, 1:] / (ac[:, :1] * _WINDOW_AC)
    left, centre, right = r[:, :-2], r[:, 1:-1], r[:, 2:]
    curvature = left - 2.0 * centre + right
    is_peak = (centre >= left) & (centre >= right) & (curvature < 0.0)
    shift = np.minimum(np.maximum(0.5 * (left - right) / np.where(is_peak, curvature, -1.0), -0.5), 0.5)
    height = centre - 0.25 * (left - right) * shift
    best = np.argmax(np.where(is_peak, height - _LAG_COST[1:-1], -np.inf), axis=1)
    rows = np.arange(r.shape[0])
    found = is_peak[rows, best]
    f0[cand] = _PITCH_SR / (_LAGS[best + 1] + _LAG_STEP * shift[rows, best])
    peak[cand] = np.where(found, height[rows, best], 0.0)
    return f0, peak, e_db


def _pitch_features(x: np.ndarray) -> np.ndarray:
    """F0 and voice-quality functionals, in _PITCH_NAMES order (F0 terms 0 if nothing is voiced)."""
    f0, r, e_db = _pitch_track(x)
    voiced = (r >= _VOICING_THRESHOLD) & (e_db >= -_VOICED_DB)
    n_active = max(np.count_nonzero(e_db >= -_VOICED_DB), 1)  # the frames that may be voiced: a fraction <= 1
    out = np.zeros(len(_PITCH_NAMES))
    out[8] = np.count_nonzero(voiced) / n_active
    out[9] = (np.count_nonzero(voiced[1:] & ~voiced[:-1]) + voiced[0]) / (n_active * _PITCH_HOP / _PITCH_SR)
    if not voiced.any():
        return out
    st_all = 12.0 * np.log2(np.maximum(f0, 1.0) / _ST_REF_HZ)
    st = st_all[voiced]
    p10, p50, p90 = _percentiles(st, (10.0, 50.0, 90.0))
    t = np.flatnonzero(voiced) * (_PITCH_HOP / _PITCH_SR)
    t -= _mean(t)
    var_t = np.sum(t * t)
    pair = voiced[1:] & voiced[:-1]
    triple = pair[1:] & pair[:-1]
    d_st = np.abs(st_all[1:] - st_all[:-1])[pair]
    shimmer = np.abs(e_db[1:] - e_db[:-1])[pair]
    jitter = (np.abs(f0[1:-1] - 0.5 * (f0[:-2] + f0[2:])) / np.maximum(f0[1:-1], 1.0))[triple]
    rc = np.minimum(np.maximum(r[voiced], 1e-3), 1.0 - 1e-3)
    hnr = 10.0 * np.log10(rc / (1.0 - rc))
    st_mean, hnr_mean = _mean(st), _mean(hnr)
    out[:8] = [
        st_mean,
        _sd(st, st_mean),
        p10,
        p50,
        p90,
        p90 - p10,
        _mean(d_st),
        np.sum(t * (st - st_mean)) / var_t if var_t > 0 else 0.0,
    ]
    out[10:] = [hnr_mean, _sd(hnr, hnr_mean), _mean(jitter), _mean(shimmer)]
    return out


# ---------------------------------------------------------------- public


def extract(audio: np.ndarray) -> np.ndarray:
    """Feature vector (float32, shape (FEATURE_SIZE,), finite) of one mono 16 kHz utterance."""
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ValueError(f"expected 1-D mono audio, got shape {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    x = trim_edges(x)
    if x.size < _WIN:
        x = np.concatenate([x, np.zeros(_WIN - x.size)])

    q, power_max = _main_spectrum(x)
    level = _percentiles(q[:, _TOTAL], (_LEVEL_PERCENTILE,))[0] + 1e-30
    q /= level
    power_max /= level
    # A synthetic white floor _FLOOR_DB below the level masks whatever quieter noise the recording
    # has (a studio's digital silence, a microphone's hiss), so both look the same.
    floor = 10.0 ** (-_FLOOR_DB / 10.0)
    q += floor * _PROJ_FLOOR
    power_max += floor / _FREQS.size
    mel = q[:, :_N_MELS]
    e_db = _db(q[:, _TOTAL])
    e_db -= e_db.max()
    active = _active_mask(e_db, _ACTIVE_DB)

    logmel = _db(mel)
    logmel = np.maximum(logmel, logmel.max() - _TOP_DB)
    logmel_proj = logmel @ _LOGMEL_PROJ
    mfcc = logmel_proj[:, :_N_CEP]
    chroma = q[:, _CHROMA_COLS]
    chroma = chroma / (np.maximum.reduce(chroma, axis=1)[:, None] + _EPS)
    spectral = _spectral(q, power_max, logmel, logmel_proj)

    # One pass of column statistics over the active frames: logmel | mfcc | spectral | chroma | delta mfcc.
    mean, std = _mean_std(np.concatenate([logmel, mfcc, spectral, chroma, _delta(mfcc)], axis=1)[active])
    mfcc_at = _N_MELS
    spectral_at = mfcc_at + _N_CEP
    chroma_at = spectral_at + len(_SPECTRAL_NAMES)
    delta_at = chroma_at + len(_CHROMA_NAMES)
    out = np.concatenate(
        [
            mean[:mfcc_at],
            std[:mfcc_at],
            mean[mfcc_at:spectral_at],
            std[mfcc_at:spectral_at],
            std[delta_at:],
            mean[spectral_at:chroma_at],
            std[spectral_at:chroma_at],
            mean[chroma_at:delta_at],
            _energy_features(e_db, active),
            _pitch_features(x),
        ]
    )
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
