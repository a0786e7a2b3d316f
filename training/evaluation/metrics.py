"""Pure image and signal metrics: PSNR, SSIM, Pearson correlation, LSE-D / LSE-C from distance curves."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SSIM_SIGMA, SSIM_RADIUS = 1.5, 5  # Wang et al. 2004: 11x11 Gaussian window, sigma 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image PSNR in dB of (N, C, H, W) images in [0, 1]."""
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return 10.0 * torch.log10(1.0 / mse)


def _gauss(dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=dtype)
    g = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image SSIM of (N, C, H, W) images in [0, 1], averaged over channels.

    Gaussian-weighted local statistics (population covariance), evaluated where the window fits inside
    the image: the definition of Wang et al. (2004), and what scikit-image computes with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``.
    """
    n, c, h, w = a.shape
    a64, b64 = a.double().reshape(n * c, 1, h, w), b.double().reshape(n * c, 1, h, w)
    g = _gauss(torch.float64)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))

    mu_a, mu_b = blur(a64), blur(b64)
    var_a = blur(a64 * a64) - mu_a**2
    var_b = blur(b64 * b64) - mu_b**2
    cov = blur(a64 * b64) - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3)).reshape(n, c).mean(dim=1).float()


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 0 when either signal is constant (a still mouth agrees with nothing)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    # float32 networks give a constant input's outputs a ~1e-7 jitter: treat that as constant
    if x.size < 2 or x.std() <= 1e-5 * (1 + abs(x.mean())) or y.std() <= 1e-5 * (1 + abs(y.mean())):
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def offset_distances(video: np.ndarray, audio: np.ndarray, max_shift: int) -> np.ndarray:
    """Mean embedding distance between video step t and audio step t + k, for k = -max..max.

    ``video`` and ``audio`` are (T, D) embeddings of one track at consecutive samples.
    """
    t = len(video)
    out = np.full(2 * max_shift + 1, np.nan)
    for i, k in enumerate(range(-max_shift, max_shift + 1)):
        lo, hi = max(0, -k), min(t, t - k)
        if hi > lo:
            out[i] = float(np.linalg.norm(video[lo:hi] - audio[lo + k : hi + k], axis=1).mean())
    return out


def lse(dists: np.ndarray) -> tuple[float, float, int]:
    """(LSE-D, LSE-C, best shift index) of a distance-over-offsets curve, as SyncNet scores a video:
    distance at the best offset, and confidence = median distance - minimum distance."""
    valid = dists[np.isfinite(dists)]
    if valid.size == 0:
        return math.nan, math.nan, -1
    best = int(np.nanargmin(dists))
    return float(dists[best]), float(np.median(valid) - dists[best]), best
