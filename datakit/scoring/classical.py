"""NIQE and PIQE: classical no-reference image quality metrics, in numpy (no weights, no torch).

Both follow the MATLAB reference definitions (and agree with pyiqa's ``niqe`` / ``piqe``;
see tests/test_scoring_signals.py). Lower is better for both. A clip's score is the mean
over sampled frames.

- NIQE (Mittal et al. 2013): distance between the NSS feature statistics of 96×96 patches
  (two scales) and a Gaussian fitted on pristine images (``data/niqe_pristine.npz``).
  Needs frames of at least 96×96 pixels.
- PIQE (Venkatanath et al. 2015): share of 16×16 blocks, among the active ones, that show
  blockiness or noise; 0..100.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.special import gammaln

from ._matlab import aggd_fit, gaussian_window, imresize, mscn
from .frames import luma, sample_indices

_WINDOW = gaussian_window(7, 7.0 / 6.0)


@lru_cache(maxsize=1)
def niqe_pristine() -> tuple[np.ndarray, np.ndarray]:
    """The pristine model shipped as package data: ``(mu (36,), cov (36, 36))``."""
    with resources.files("datakit.scoring").joinpath("data/niqe_pristine.npz").open("rb") as f:
        d = np.load(f)
        return d["mu_prisparam"].astype(np.float64), d["cov_prisparam"].astype(np.float64)


def _blocks(img: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """Non-overlapping ``bh × bw`` blocks of a 2-D image (partial blocks dropped): (n, bh, bw)."""
    h, w = img.shape[0] // bh, img.shape[1] // bw
    return img[:h * bh, :w * bw].reshape(h, bh, w, bw).swapaxes(1, 2).reshape(h * w, bh, bw)


def _nss_features(blocks: np.ndarray) -> np.ndarray:
    """18 NSS features per block: AGGD fit of the coefficients, then of the products of
    neighbours along four orientations (circular shifts within the block)."""
    n = len(blocks)
    alpha, bl, br = aggd_fit(blocks.reshape(n, -1))
    feats = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        prod = blocks * np.roll(blocks, shift, axis=(1, 2))
        a, l, r = aggd_fit(prod.reshape(n, -1))
        mean = (r - l) * np.exp(gammaln(2.0 / a) - gammaln(1.0 / a))
        feats += [a, mean, l, r]
    return np.stack(feats, axis=1)


def niqe_gray(y: np.ndarray, block: int = 96) -> float:
    """NIQE of one luma image (0..255). NaN if the image is smaller than one block."""
    mu_p, cov_p = niqe_pristine()
    y = np.round(np.asarray(y, dtype=np.float64))
    h, w = (y.shape[0] // block) * block, (y.shape[1] // block) * block
    if h == 0 or w == 0:
        return float("nan")
    img = y[:h, :w]
    feats = []
    for scale in (1, 2):
        feats.append(_nss_features(_blocks(mscn(img, _WINDOW), block // scale, block // scale)))
        if scale == 1:
            img = imresize(img / 255.0, 0.5) * 255.0
    feats = np.concatenate(feats, axis=1)
    mu_d = np.nanmean(feats, axis=0)
    rows = feats[~np.isnan(feats).any(axis=1)]
    if len(rows) == 0:
        return float("nan")
    # one patch: MATLAB's cov of a single observation is zero (normalised by 1, not 0)
    cov_d = np.cov(rows, rowvar=False) if len(rows) > 1 else np.zeros_like(cov_p)
    d = mu_p - mu_d
    q = d @ np.linalg.pinv((cov_p + cov_d) / 2.0) @ d
    return float(np.sqrt(q))


@dataclass(frozen=True)
class NiqeParams:
    frames: int = 4           # frames sampled evenly over the clip
    block: int = 96           # patch size of the reference model (do not change for comparable scores)


def niqe(frames: np.ndarray, p: NiqeParams = NiqeParams()) -> float | None:
    """Mean NIQE over sampled frames; None when frames are smaller than one patch."""
    vals = [niqe_gray(luma(frames[i]), p.block) for i in sample_indices(len(frames), p.frames)]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def piqe_gray(y: np.ndarray, block: int = 16, activity: float = 0.1, impaired: float = 0.1,
              segment: int = 6) -> float:
    """PIQE of one luma image (float, any range: it is rescaled to 0..255 by its maximum)."""
    y = np.asarray(y, dtype=np.float64)
    peak = y.max()
    y = np.round(255.0 * y / peak) if peak > 0 else y
    h, w = y.shape
    y = np.pad(y, ((0, h % block), (0, w % block)), mode="symmetric")  # as the reference pads
    blocks = _blocks(mscn(y, _WINDOW), block, block)
    var = blocks.var(axis=(1, 2), ddof=1)
    active = var > activity

    # noise: block deviation against the centre/surround deviation ratio
    c1 = (block - 1 + 1) // 2 - 1                      # the two centre columns: c1, c1 + 1
    centre = blocks[:, :, c1:c1 + 2].reshape(len(blocks), -1)
    surround = np.concatenate([blocks[:, :, :c1], blocks[:, :, c1 + 2:]], axis=2).reshape(len(blocks), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        csd = np.nan_to_num(centre.std(axis=1, ddof=1) / surround.std(axis=1, ddof=1))
        sigma = np.sqrt(var)
        beta = np.abs(sigma - csd) / np.maximum(sigma, csd)
        noisy = sigma > 2 * beta

    # noticeable distortion: a flat run of `segment` pixels along any block edge
    edges = np.stack([blocks[:, 0, :], blocks[:, :, -1], blocks[:, -1, :], blocks[:, :, 0]], axis=1)
    runs = np.lib.stride_tricks.sliding_window_view(edges, segment, axis=2)
    flat = (runs.std(axis=-1, ddof=1) < impaired).any(axis=(1, 2))

    dist = active * flat * (1 - var) + active * noisy * var
    return float((dist.sum() + 1.0) / (active.sum() + 1.0) * 100.0)


@dataclass(frozen=True)
class PiqeParams:
    frames: int = 4           # frames sampled evenly over the clip


def piqe(frames: np.ndarray, p: PiqeParams = PiqeParams()) -> float:
    """Mean PIQE over sampled frames (0..100, lower is better)."""
    return float(np.mean([piqe_gray(luma(frames[i]) / 255.0) for i in sample_indices(len(frames), p.frames)]))
