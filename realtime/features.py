"""Utterance-level acoustic features shared by the live runtime and the trainer.

``extract`` maps a mono 16 kHz utterance to a fixed-length float32 vector of
functionals (mean, std, percentiles, slopes) over frame-level descriptors:
log-mel bands, MFCCs and their deltas, chroma, F0 and voice quality, energy
dynamics and spectral shape.  Pure numpy; constant matrices are built once at
import.  Every descriptor is relative to the utterance's own level, so the
vector does not depend on input gain.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE: int = 16000
FEATURE_VERSION: int = 1

# Main analysis: 25 ms Hann window, 10 ms hop, 512-point FFT.
_WIN = 400
_HOP = 160
_NFFT = 512
_N_MELS = 40
_N_MFCC = 20  # c0 is computed and dropped
_TOP_DB = 80.0  # log-mel floor below the utterance's loudest band value
_ACTIVE_DB = 40.0  # active frames: within this many dB of the loudest frame
_MIN_ACTIVE = 5
_LEVEL_PERCENTILE = 95.0  # reference level: this percentile of frame energy
_EPS = 1e-12

# Pitch analysis: decimate to 8 kHz, 40 ms Hann window, 20 ms hop.
_PITCH_SR = SAMPLE_RATE // 2
_PITCH_WIN = 320
_PITCH_HOP = 160
_PITCH_NFFT = 512
_F0_MIN = 60.0
_F0_MAX = 400.0
_VOICING_THRESHOLD = 0.45  # normalised autocorrelation peak
_VOICED_DB = 30.0  # voiced frames must be within this many dB of the loudest
_OCTAVE_COST = 0.01  # per octave, favours shorter lags (Boersma 1993)
_ST_REF_HZ = 55.0

_CHROMA_NAMES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
_SPECTRAL_NAMES = (
    "centroid_hz",
    "spread_hz",
    "rolloff85_hz",
    "flatness_db",
    "flux",
    "zcr",
    "alpha_ratio_db",
    "hammarberg_db",
    "slope_db_per_khz",
)


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, log above), as librosa htk=False."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    mel = f / f_sp
    log_part = min_log_hz / f_sp + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def _mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_mels, n_fft//2 + 1)."""
    fft_freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II, shape (n_in, n_out), as scipy dct(type=2, norm='ortho')."""
    n = np.arange(n_in)
    k = np.arange(n_out)
    m = np.cos(np.pi / n_in * (n[:, None] + 0.5) * k[None, :]) * np.sqrt(2.0 / n_in)
    m[:, 0] /= np.sqrt(2.0)
    return m


def _chroma_filterbank(sr: int, n_fft: int) -> np.ndarray:
    """Soft pitch-class weights, shape (n_fft//2 + 1, 12), C first.

    Each FFT bin spreads its power over the 12 classes with a Gaussian in
    circular semitone distance (width at least one semitone and at least the
    bin's own width in semitones), weighted by a Gaussian over octaves centred
    near C5 (as librosa's chroma filters).
    """
    freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    valid = freqs >= 50.0
    f = np.where(valid, freqs, 50.0)
    semis = 12.0 * np.log2(f / 16.351597831287414)  # semitones above C0
    bin_width = 12.0 * np.log2((f + sr / n_fft / 2) / np.maximum(f - sr / n_fft / 2, 1.0))
    sigma = np.maximum(1.0, bin_width / 2)
    d = (semis[:, None] - np.arange(12)[None, :] + 6.0) % 12.0 - 6.0
    w = np.exp(-0.5 * (d / sigma[:, None]) ** 2)
    w /= w.sum(axis=1, keepdims=True)
    octave_weight = np.exp(-0.5 * ((semis / 12.0 - 5.0) / 2.0) ** 2)
    return w * (octave_weight * valid)[:, None]


def _halfband_taps(n_side: int = 4) -> np.ndarray:
    """Odd-offset taps of a Hamming-windowed half-band low-pass (centre tap 0.5, unit DC gain)."""
    k = 2 * np.arange(n_side) + 1
    h = np.sin(np.pi * k / 2) / (np.pi * k) * (0.54 + 0.46 * np.cos(np.pi * k / (2 * n_side + 1)))
    return h * (0.25 / h.sum())


_WINDOW = _periodic_hann(_WIN)
_FREQS = np.linspace(0.0, SAMPLE_RATE / 2, _NFFT // 2 + 1)
_MEL_FB_T = np.ascontiguousarray(_mel_filterbank(SAMPLE_RATE, _NFFT, _N_MELS).T)
_DCT = _dct_matrix(_N_MELS, _N_MFCC)[:, 1:]
_CHROMA_FB = _chroma_filterbank(SAMPLE_RATE, _NFFT)
_HALFBAND = _halfband_taps()

_FLAT_BAND = (_FREQS >= 100.0) & (_FREQS <= 7000.0)
_ALPHA_LO = (_FREQS >= 50.0) & (_FREQS < 1000.0)
_ALPHA_HI = (_FREQS >= 1000.0) & (_FREQS < 5000.0)
_HAMM_LO = (_FREQS > 0.0) & (_FREQS < 2000.0)
_HAMM_HI = (_FREQS >= 2000.0) & (_FREQS < 5000.0)
_SLOPE_BAND = (_FREQS >= 50.0) & (_FREQS <= 5000.0)
_slope_f = _FREQS[_SLOPE_BAND] / 1000.0
_SLOPE_PROJ = (_slope_f - _slope_f.mean()) / np.sum((_slope_f - _slope_f.mean()) ** 2)

_PITCH_WINDOW = _periodic_hann(_PITCH_WIN)
_LAG_MIN = int(np.floor(_PITCH_SR / _F0_MAX))
_LAG_MAX = int(np.ceil(_PITCH_SR / _F0_MIN))


def _autocorr_matrix(n_fft: int, n_lags: int) -> np.ndarray:
    """Matrix C with P @ C == irfft(P)[:, :n_lags] for a one-sided power spectrum P."""
    k = np.arange(n_fft // 2 + 1)
    c = np.cos(2.0 * np.pi * np.outer(k, np.arange(n_lags)) / n_fft) * (2.0 / n_fft)
    c[0] /= 2.0
    c[-1] /= 2.0
    return c


_AC_MATRIX = _autocorr_matrix(_PITCH_NFFT, _LAG_MAX + 2)
_win_spec = np.fft.rfft(_PITCH_WINDOW, _PITCH_NFFT)
_WINDOW_AC = (np.abs(_win_spec) ** 2) @ _AC_MATRIX
_WINDOW_AC = _WINDOW_AC / _WINDOW_AC[0]
_LAGS = np.arange(_LAG_MIN - 1, _LAG_MAX + 2)
_LAG_COST = _OCTAVE_COST * np.log2(_F0_MIN * _LAGS / _PITCH_SR)


def _build_names() -> tuple[str, ...]:
    names: list[str] = []
    names += [f"logmel{i}_mean" for i in range(_N_MELS)]
    names += [f"logmel{i}_std" for i in range(_N_MELS)]
    coeffs = range(1, _N_MFCC)
    names += [f"mfcc{i}_mean" for i in coeffs]
    names += [f"mfcc{i}_std" for i in coeffs]
    names += [f"mfcc{i}_delta_std" for i in coeffs]
    names += [f"{s}_mean" for s in _SPECTRAL_NAMES]
    names += [f"{s}_std" for s in _SPECTRAL_NAMES]
    names += [f"chroma_{c}_mean" for c in _CHROMA_NAMES]
    names += [
        "energy_db_mean",
        "energy_db_std",
        "energy_db_p10",
        "energy_db_p50",
        "energy_db_p90",
        "energy_db_range",
        "energy_db_delta_abs_mean",
        "energy_frac_within_20db",
        "energy_peak_rate_hz",
    ]
    names += [
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
    ]
    names += ["hnr_db_mean", "hnr_db_std", "jitter_rel", "shimmer_db"]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _build_names()
FEATURE_SIZE: int = len(FEATURE_NAMES)


def feature_params() -> dict:
    """JSON-serialisable description of the feature computation."""
    return {
        "feature_version": FEATURE_VERSION,
        "feature_size": FEATURE_SIZE,
        "sample_rate": SAMPLE_RATE,
        "frame": {"win_length": _WIN, "hop_length": _HOP, "n_fft": _NFFT, "window": "hann"},
        "level": {
            "reference": f"p{_LEVEL_PERCENTILE:g} of frame energy",
            "active_frames_db": _ACTIVE_DB,
            "log_mel_top_db": _TOP_DB,
        },
        "mel": {"n_mels": _N_MELS, "fmin": 0.0, "fmax": SAMPLE_RATE / 2, "scale": "slaney", "norm": "slaney"},
        "mfcc": {"n_mfcc": _N_MFCC, "dct": "ortho type 2", "dropped": ["c0"], "delta_width": 5},
        "chroma": {"n_chroma": 12, "source": "power spectrum"},
        "pitch": {
            "method": "normalised autocorrelation (power spectrum, window-corrected)",
            "sample_rate": _PITCH_SR,
            "win_length": _PITCH_WIN,
            "hop_length": _PITCH_HOP,
            "n_fft": _PITCH_NFFT,
            "f0_min_hz": _F0_MIN,
            "f0_max_hz": _F0_MAX,
            "voicing_threshold": _VOICING_THRESHOLD,
            "voiced_db": _VOICED_DB,
            "octave_cost": _OCTAVE_COST,
            "semitone_ref_hz": _ST_REF_HZ,
        },
        "names": list(FEATURE_NAMES),
    }


def _frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Strided (n_frames, win) view; x must have at least win samples."""
    return np.lib.stride_tricks.sliding_window_view(x, win)[::hop]


def _active_mask(energy_db: np.ndarray, threshold_db: float) -> np.ndarray:
    mask = energy_db >= -threshold_db
    if mask.sum() < min(_MIN_ACTIVE, energy_db.size):
        mask = np.ones_like(mask)
    return mask


def _delta(x: np.ndarray) -> np.ndarray:
    """5-frame regression delta along axis 0 with edge padding."""
    p = np.concatenate([x[:1], x[:1], x, x[-1:], x[-1:]], axis=0)
    return (p[3:-1] - p[1:-3] + 2.0 * (p[4:] - p[:-4])) / 10.0


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    return mean, np.sqrt(np.maximum((x * x).mean(axis=0) - mean * mean, 0.0))


def _decimate2(x: np.ndarray) -> np.ndarray:
    """Half-band low-pass then keep every second sample (16 kHz -> 8 kHz)."""
    n = _HALFBAND.size
    p = np.concatenate([np.zeros(2 * n - 1), x, np.zeros(2 * n - 1)])
    centre = p[2 * n - 1 : 2 * n - 1 + x.size : 2]
    y = 0.5 * centre
    for j, h in enumerate(_HALFBAND):
        k = 2 * j + 1
        y = y + h * (
            p[2 * n - 1 - k : 2 * n - 1 - k + x.size : 2] + p[2 * n - 1 + k : 2 * n - 1 + k + x.size : 2]
        )
    return y


def _pitch(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pitch frame: F0 in Hz, peak normalised autocorrelation, energy in dB re max."""
    y = _decimate2(x)
    if y.size < _PITCH_WIN:
        y = np.concatenate([y, np.zeros(_PITCH_WIN - y.size)])
    spec = np.fft.rfft(_frames(y, _PITCH_WIN, _PITCH_HOP) * _PITCH_WINDOW, _PITCH_NFFT)
    power = spec.real**2 + spec.imag**2
    ac = power @ _AC_MATRIX
    energy = ac[:, 0]
    r = ac[:, _LAGS] / (np.maximum(energy, _EPS)[:, None] * _WINDOW_AC[_LAGS])
    left, centre, right = r[:, :-2], r[:, 1:-1], r[:, 2:]
    curvature = left - 2.0 * centre + right
    is_peak = (centre >= left) & (centre >= right) & (curvature < 0.0)
    safe = np.where(is_peak, curvature, -1.0)
    shift = np.clip(0.5 * (left - right) / safe, -0.5, 0.5)
    height = centre - 0.25 * (left - right) * shift
    score = np.where(is_peak, height - _LAG_COST[1:-1], -np.inf)
    i = np.argmax(score, axis=1)
    rows = np.arange(r.shape[0])
    found = is_peak[rows, i]
    f0 = _PITCH_SR / (_LAGS[i + 1] + shift[rows, i])
    peak = np.where(found, height[rows, i], 0.0)
    energy_db = 10.0 * np.log10(energy + _EPS * (energy.max() + _EPS))
    return f0, peak, energy_db - energy_db.max()


def _pitch_features(x: np.ndarray) -> np.ndarray:
    f0, r, e_db = _pitch(x)
    active = _active_mask(e_db, _ACTIVE_DB)
    voiced = (r >= _VOICING_THRESHOLD) & (e_db >= -_VOICED_DB)
    n_voiced = int(voiced.sum())
    span_s = max(active.sum(), 1) * _PITCH_HOP / _PITCH_SR
    onsets = np.count_nonzero(voiced[1:] & ~voiced[:-1]) + int(voiced[0])
    out = np.zeros(14)
    out[8] = n_voiced / max(active.sum(), 1)
    out[9] = onsets / span_s
    if n_voiced == 0:
        return out
    st = 12.0 * np.log2(f0[voiced] / _ST_REF_HZ)
    p10, p50, p90 = np.percentile(st, [10.0, 50.0, 90.0])
    t = np.flatnonzero(voiced) * (_PITCH_HOP / _PITCH_SR)
    tc = t - t.mean()
    var_t = np.sum(tc * tc)
    pair = voiced[1:] & voiced[:-1]
    st_all = 12.0 * np.log2(f0 / _ST_REF_HZ)
    d_st = np.abs(np.diff(st_all))[pair]
    triple = pair[1:] & pair[:-1]
    jitter = np.abs(f0[1:-1] - 0.5 * (f0[:-2] + f0[2:])) / f0[1:-1]
    shimmer = np.abs(np.diff(e_db))[pair]
    rc = np.clip(r[voiced], 1e-3, 1.0 - 1e-3)
    hnr = 10.0 * np.log10(rc / (1.0 - rc))
    out[:8] = [
        st.mean(),
        st.std(),
        p10,
        p50,
        p90,
        p90 - p10,
        d_st.mean() if d_st.size else 0.0,
        np.sum(tc * (st - st.mean())) / var_t if var_t > 0 else 0.0,
    ]
    out[10:] = [
        hnr.mean(),
        hnr.std(),
        jitter[triple].mean() if triple.any() else 0.0,
        shimmer.mean() if shimmer.size else 0.0,
    ]
    return out


def _energy_features(e_db: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Dynamics of frame energy in dB re the utterance's loudest frame."""
    ea = e_db[active]
    p10, p50, p90 = np.percentile(ea, [10.0, 50.0, 90.0])
    kernel = _periodic_hann(12)[1:]
    smooth = np.convolve(np.maximum(e_db, -_ACTIVE_DB), kernel / kernel.sum(), mode="same")
    is_peak = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:]) & (smooth[1:-1] > -25.0)
    span_s = max(np.ptp(np.flatnonzero(active)) + 1, 1) * _HOP / SAMPLE_RATE
    return np.array(
        [
            ea.mean(),
            ea.std(),
            p10,
            p50,
            p90,
            p90 - p10,
            np.abs(np.diff(e_db))[active[1:]].mean() if e_db.size > 1 else 0.0,
            np.mean(ea >= -20.0),
            np.count_nonzero(is_peak) / span_s,
        ]
    )


def _spectral(power: np.ndarray, x_frames: np.ndarray) -> np.ndarray:
    """Per-frame spectral shape descriptors, shape (n_frames, 9)."""
    mag = np.sqrt(power)
    total = mag.sum(axis=1) + _EPS
    centroid = mag @ _FREQS / total
    spread = np.sqrt(np.maximum(mag @ _FREQS**2 / total - centroid**2, 0.0))
    cum = np.cumsum(mag, axis=1)
    rolloff = _FREQS[np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)]
    pb = power[:, _FLAT_BAND] + _EPS
    flatness = 10.0 * (np.log10(pb).mean(axis=1) - np.log10(pb.mean(axis=1)))
    norm = mag / total[:, None]
    flux = np.concatenate([[0.0], np.sqrt(np.sum(np.diff(norm, axis=0) ** 2, axis=1))])
    sign = np.signbit(x_frames)
    zcr = np.count_nonzero(sign[:, 1:] != sign[:, :-1], axis=1) / (x_frames.shape[1] - 1)
    alpha = 10.0 * np.log10((power[:, _ALPHA_LO].sum(axis=1) + _EPS) / (power[:, _ALPHA_HI].sum(axis=1) + _EPS))
    hamm = 10.0 * np.log10((power[:, _HAMM_LO].max(axis=1) + _EPS) / (power[:, _HAMM_HI].max(axis=1) + _EPS))
    slope = (10.0 * np.log10(power[:, _SLOPE_BAND] + _EPS)) @ _SLOPE_PROJ
    return np.stack([centroid, spread, rolloff, flatness, flux, zcr, alpha, hamm, slope], axis=1)


def extract(audio: np.ndarray) -> np.ndarray:
    """Feature vector (float32, shape (FEATURE_SIZE,)) of one mono 16 kHz utterance."""
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ValueError(f"expected 1-D mono audio, got shape {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if x.size < _WIN:
        x = np.concatenate([x, np.zeros(_WIN - x.size)])

    x_frames = _frames(x, _WIN, _HOP)
    spec = np.fft.rfft(x_frames * _WINDOW, _NFFT)
    power = spec.real**2 + spec.imag**2
    frame_energy = power.sum(axis=1)
    ref = np.percentile(frame_energy, _LEVEL_PERCENTILE)
    power *= 1.0 / (ref + 1e-30)
    frame_energy *= 1.0 / (ref + 1e-30)
    e_db = 10.0 * np.log10(frame_energy + _EPS)
    e_db -= e_db.max()
    active = _active_mask(e_db, _ACTIVE_DB)

    logmel = 10.0 * np.log10(power @ _MEL_FB_T + _EPS)
    logmel = np.maximum(logmel, logmel.max() - _TOP_DB)
    mfcc = logmel @ _DCT
    delta_std = _mean_std(_delta(mfcc)[active])[1]
    chroma = power @ _CHROMA_FB
    chroma /= chroma.max(axis=1, keepdims=True) + _EPS

    stacked = np.concatenate([logmel, mfcc, _spectral(power, x_frames)], axis=1)[active]
    mean, std = _mean_std(stacked)
    n_mel, n_cep = _N_MELS, _N_MFCC - 1
    out = np.concatenate(
        [
            mean[:n_mel],
            std[:n_mel],
            mean[n_mel : n_mel + n_cep],
            std[n_mel : n_mel + n_cep],
            delta_std,
            mean[n_mel + n_cep :],
            std[n_mel + n_cep :],
            chroma[active].mean(axis=0),
            _energy_features(e_db, active),
            _pitch_features(x),
        ]
    )
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
