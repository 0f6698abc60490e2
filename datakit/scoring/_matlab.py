"""The few MATLAB image functions that NIQE and PIQE are defined with, in numpy/OpenCV.

Scores of the classical metrics are only comparable with published numbers when these
match MATLAB: ``fspecial('gaussian')``, ``imfilter(..., 'replicate')`` and ``imresize``
(bicubic with antialiasing on downscale, symmetric borders).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.special import gammaln


def gaussian_window(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """``fspecial('gaussian', size, sigma)``: normalised, negligible tails zeroed."""
    r = (size - 1) / 2.0
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    return h / h.sum()


def filter_replicate(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``imfilter(img, kernel, 'replicate')`` (correlation, same size), float64."""
    return cv2.filter2D(img.astype(np.float64), cv2.CV_64F, kernel, borderType=cv2.BORDER_REPLICATE)


def mscn(img: np.ndarray, window: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients: (I - mu) / (sigma + c), local Gaussian stats."""
    mu = filter_replicate(img, window)
    var = np.abs(filter_replicate(img * img, window) - mu * mu)
    return (img - mu) / (np.sqrt(var) + c)


def _cubic(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    a2, a3 = a * a, a * a * a
    return ((1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
            + (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2)))


def _resize_weights(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (0-based) and weights of MATLAB's bicubic ``imresize`` along one axis."""
    width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel over the coarser grid
        kernel = lambda x: scale * _cubic(scale * x)  # noqa: E731
        width = width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)        # output pixel centre on the input grid (1-based)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])  # symmetric borders
    idx = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return idx[:, keep], w[:, keep]


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` (bicubic, antialiased when shrinking) of a 2-D float image."""
    img = np.asarray(img, dtype=np.float64)
    h, w = img.shape
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    idx, wt = _resize_weights(h, oh, scale)
    img = np.einsum("ok,okw->ow", wt, img[idx])
    idx, wt = _resize_weights(w, ow, scale)
    return np.einsum("ok,hok->ho", wt, img[:, idx])


_GAMMAS = np.linspace(0.2, 10.0, 9801)
_R_GAMMA = np.exp(2 * gammaln(2.0 / _GAMMAS) - gammaln(1.0 / _GAMMAS) - gammaln(3.0 / _GAMMAS))


def aggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit an asymmetric generalised Gaussian to each row of ``x`` (moment matching over a
    grid of shapes 0.2:0.001:10, as the NIQE reference code does).

    Returns ``(alpha, beta_left, beta_right)``, one value per row. Where a side is empty
    (flat blocks) the betas are NaN and alpha is the first grid value, as MATLAB's ``min``
    over an all-NaN vector gives.
    """
    x = np.asarray(x, dtype=np.float64)
    neg, pos = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((np.where(neg, x, 0) ** 2).sum(1) / neg.sum(1))
        right = np.sqrt((np.where(pos, x, 0) ** 2).sum(1) / pos.sum(1))
        g = left / right
        r = np.abs(x).mean(1) ** 2 / (x * x).mean(1)
        rn = r * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    pick = np.abs(_R_GAMMA[None, :] - rn[:, None])
    pick[~np.isfinite(rn)] = 0
    alpha = _GAMMAS[np.argmin(pick, axis=1)]
    const = np.sqrt(np.exp(gammaln(1.0 / alpha) - gammaln(3.0 / alpha)))
    return alpha, left * const, right * const
