"""The per-frame degradation maths in torch, for a GPU (or any torch device).

The same operations as ``ops.py`` on batches ``(B, 3, H, W)`` of float32 frames on the 8-bit
scale, one parameter per frame. They agree with the NumPy/OpenCV path to float rounding
(tested on the CPU for every kernel family, resize mode and noise kind), except that noise
fields come from torch's generator (seeded per frame from the same recorded seed): same
distribution, other samples. OpenCV's resize modes are reproduced exactly: bilinear and
bicubic are torch's ``interpolate`` with a size (the same formulas), OpenCV's "area" is the
product of the separable weight matrices ``cv_area_weights`` builds.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from . import diffjpeg as dj
from .ops import POISSON_NORMAL_MIN

_LUMA = (0.299, 0.587, 0.114)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 255] and round half to even to uint8."""
    return torch.round(x.clamp(0, 255)).to(torch.uint8)


def reflect_index(n: int, pad: int) -> np.ndarray:
    """Indices of ``n`` samples padded by ``pad`` on both sides, reflected without repeating the edge
    (OpenCV's BORDER_REFLECT_101), as many times as needed."""
    idx = np.arange(-pad, n + pad)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def reflect_pad(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    rows = torch.as_tensor(reflect_index(h, ph), device=x.device)
    cols = torch.as_tensor(reflect_index(w, pw), device=x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _per_channel(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Correlate every channel of every frame with that frame's kernel: ``weight`` (B, kh, kw)."""
    b, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    xp = reflect_pad(x, kh // 2, kw // 2).reshape(1, b * c, h + kh - 1, w + kw - 1)
    wt = weight.to(x.dtype)[:, None].repeat_interleave(c, dim=0)          # (B * c, 1, kh, kw)
    return F.conv2d(xp, wt, groups=b * c).reshape(b, c, h, w)


def blur(x: torch.Tensor, kernels: np.ndarray) -> torch.Tensor:
    """Frame ``i`` of ``x`` correlated with ``kernels[i]`` (``(B, k, k)``), reflected borders."""
    return _per_channel(x, torch.as_tensor(np.asarray(kernels, dtype=np.float32), device=x.device))


def usm(x: torch.Tensor, taps: np.ndarray, weight: float, threshold: float) -> torch.Tensor:
    """Unsharp masking with the separable Gaussian ``taps`` (as ``ops.usm``)."""
    b = x.shape[0]
    t = torch.as_tensor(np.asarray(taps, dtype=np.float32), device=x.device)

    def gauss(v):
        v = _per_channel(v, t.view(1, 1, -1).expand(b, 1, -1))
        return _per_channel(v, t.view(1, -1, 1).expand(b, -1, 1))

    residual = x - gauss(x)
    mask = (residual.abs() > threshold).to(x.dtype)
    soft = gauss(mask)
    sharp = (x + weight * residual).clamp(0, 255)
    return soft * sharp + (1 - soft) * x


@functools.lru_cache(maxsize=64)
def cv_area_weights(n_in: int, n_out: int, shrink: bool) -> np.ndarray:
    """OpenCV's INTER_AREA along one axis as an ``(n_out, n_in)`` matrix.

    ``shrink``: both axes shrink (or keep), where OpenCV averages the covered source cells
    (``computeResizeAreaTab``); otherwise it interpolates linearly with area-style weights.
    """
    w = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for dx in range(n_out):
        if shrink:
            f1 = dx * scale
            f2 = f1 + scale
            cell = min(scale, n_in - f1)
            s1, s2 = int(np.ceil(f1)), int(np.floor(f2))
            s2 = min(s2, n_in - 1)
            s1 = min(s1, s2)
            if s1 - f1 > 1e-3:
                w[dx, s1 - 1] += np.float32((s1 - f1) / cell)
            w[dx, s1:s2] += np.float32(1.0 / cell)
            if f2 - s2 > 1e-3:
                w[dx, s2] += np.float32(min(min(f2 - s2, 1.0), cell) / cell)
        else:
            sx = int(np.floor(dx * scale))
            fx = float(np.float32((dx + 1) - (sx + 1) * (n_out / n_in)))
            fx = 0.0 if fx <= 0 else fx - np.floor(fx)
            if sx < 0:
                sx, fx = 0, 0.0
            if sx >= n_in - 1:
                sx, fx = n_in - 1, 0.0
            w[dx, sx] += 1 - fx
            if fx:
                w[dx, sx + 1] += fx
    return w


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize a batch to ``size`` = (width, height) with the named mode (see ``ops.RESIZE_MODES``)."""
    w, h = size
    hi, wi = x.shape[-2:]
    if (hi, wi) == (h, w):
        return x
    if mode == "torch_area":
        return F.interpolate(x, size=(h, w), mode="area")
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(x, size=(h, w), mode=mode, align_corners=False)
    shrink = hi >= h and wi >= w
    wy = torch.as_tensor(cv_area_weights(hi, h, shrink), dtype=x.dtype, device=x.device)
    wx = torch.as_tensor(cv_area_weights(wi, w, shrink), dtype=x.dtype, device=x.device)
    return wy @ x @ wx.T


def generator(device: torch.device, seed: int, index: int) -> torch.Generator:
    """The generator of frame ``index``'s noise field (seeded from the step seed and the index)."""
    state = int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0])
    g = torch.Generator(device=device)
    g.manual_seed(state)
    return g


def gaussian_noise(x: torch.Tensor, sigma: np.ndarray, gray: bool, seed: int, idx) -> torch.Tensor:
    """Add N(0, sigma_i^2) to frame ``i`` (one field in R, G, B with ``gray``), clamped."""
    b, c, h, w = x.shape
    noise = torch.stack([torch.randn((1 if gray else c, h, w), generator=generator(x.device, seed, t),
                                     device=x.device, dtype=x.dtype) for t in idx])
    level = torch.as_tensor(np.asarray(sigma, dtype=np.float32), device=x.device).view(b, 1, 1, 1)
    return (x + noise * level).clamp(0, 255)


def _counts(lam: torch.Tensor, g: torch.Generator, sampler: str) -> torch.Tensor:
    if sampler == "exact":
        return torch.poisson(lam, generator=g)
    z = torch.randn(lam.shape, generator=g, device=lam.device, dtype=lam.dtype)
    out = torch.round(lam + lam.sqrt() * z + (z * z - 1) / 6)
    small = lam < POISSON_NORMAL_MIN
    if bool(small.any()):
        out = torch.where(small, torch.poisson(lam, generator=g), out)
    return out.clamp_min(0)


def poisson_noise(x: torch.Tensor, scale: np.ndarray, gray: bool, seed: int, idx, sampler: str = "exact",
                  units: str = "unit") -> torch.Tensor:
    """Signal-dependent Poisson noise times ``scale`` (as ``ops.poisson_noise``), clamped."""
    out = []
    for i, t in enumerate(idx):
        f = x[i]
        if gray:
            f = (f[0] * _LUMA[0] + f[1] * _LUMA[1] + f[2] * _LUMA[2])[None]
        img8 = torch.round(f.clamp(0, 255))
        distinct = int((torch.bincount(img8.to(torch.int64).flatten(), minlength=256) > 0).sum())
        vals = float(2 ** np.ceil(np.log2(max(distinct, 1))))
        img = img8 / 255.0 if units == "unit" else img8          # float32: counts stay exact integers
        noise = _counts(img * vals, generator(x.device, seed, t), sampler) / vals - img
        if units == "unit":
            noise = noise * 255.0
        out.append((x[i] + noise.to(x.dtype) * float(scale[i])).clamp(0, 255))
    return torch.stack(out)


def _dct_matrix(device, dtype) -> torch.Tensor:
    n = np.arange(8)
    c = np.sqrt(2 / 8) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 16)
    c[0] /= np.sqrt(2)
    return torch.as_tensor(c, dtype=dtype, device=device)


def _round_trip_planes(p: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Blockwise DCT, quantize, dequantize, inverse DCT of planes ``(B, H, W)``; ``steps`` (B, 8, 8)."""
    b, h, w = p.shape
    c = _dct_matrix(p.device, p.dtype)
    blocks = (p - 128).reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)     # (B, hb, wb, 8, 8)
    coef = c @ blocks @ c.T
    s = steps[:, None, None]
    coef = torch.round(coef / s) * s
    rec = c.T @ coef @ c + 128
    return rec.permute(0, 1, 3, 2, 4).reshape(b, h, w)


def diff_jpeg(x: torch.Tensor, quality: np.ndarray) -> torch.Tensor:
    """Real-ESRGAN's JPEG model (``diffjpeg.py``) of a batch, quality per frame; input clamped first."""
    b, _, h, w = x.shape
    factors = np.array([dj.quality_factor(q) for q in np.asarray(quality, dtype=np.float64)], dtype=np.float32)
    x = x.clamp(0, 255)
    keep = torch.as_tensor(factors == 0, device=x.device).view(b, 1, 1, 1)
    fac = torch.as_tensor(np.where(factors == 0, 1, factors), device=x.device).view(b, 1, 1)
    ph, pw = -h % 16, -w % 16
    xp = F.pad(x, (0, pw, 0, ph))
    m = torch.as_tensor(dj.RGB_TO_YCC, device=x.device)
    off = torch.as_tensor(dj.YCC_OFFSET, device=x.device).view(1, 3, 1, 1)
    ycc = torch.einsum("ij,bjhw->bihw", m, xp) + off
    y = _round_trip_planes(ycc[:, 0], torch.as_tensor(dj.Y_STEPS, device=x.device) * fac)
    chroma = []
    for k in (1, 2):
        sub = F.avg_pool2d(ycc[:, k:k + 1], 2)[:, 0]
        rec = _round_trip_planes(sub, torch.as_tensor(dj.C_STEPS, device=x.device) * fac)
        chroma.append(rec.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2))
    back = torch.as_tensor(dj.YCC_TO_RGB, device=x.device)
    out = torch.einsum("ij,bjhw->bihw", back, torch.stack([y, *chroma], dim=1) - off)
    out = out[..., :h, :w].clamp(0, 255)
    return torch.where(keep, x, out)
