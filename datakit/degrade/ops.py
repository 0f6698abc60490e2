"""Degradation operations: pure functions over stacks of frames.

Frames are ``(n, H, W, 3)`` arrays: ``float32`` on the 8-bit scale ``[0, 255]`` for
the linear steps (blur, resize, noise), ``uint8`` for the coded steps (JPEG, video).
Per-frame parameters come as arrays with one entry per frame. Randomness (noise)
comes from a seed per frame, so results do not depend on how a clip is chunked.
"""
from __future__ import annotations

import cv2
import numpy as np
import scipy.fft as sfft

from .. import media

#: Interpolation of each resize mode (OpenCV's, as in the RealBasicVSR code).
RESIZE_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
#: Codecs the video-compression step accepts (PyAV/FFmpeg encoder names).
VIDEO_CODECS = ("libx264", "mpeg4")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
#: Kernels up to this size are applied by direct correlation; larger ones through the FFT.
DIRECT_MAX = 11

# ITU-R BT.601 luma weights, as Real-ESRGAN's gray noise
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def quantize(x: np.ndarray) -> np.ndarray:
    """Clamp to [0, 255] and round to ``uint8``."""
    if x.dtype == np.uint8:
        return x
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def as_float(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _separable(kernel: np.ndarray, tol: float = 1e-7):
    """``(row, column)`` 1-D factors if the kernel is rank 1 (isotropic Gaussians are), else None."""
    u, sv, vt = np.linalg.svd(kernel.astype(np.float64))
    if sv[1] > tol * sv[0]:
        return None
    r = np.sqrt(sv[0])
    return (vt[0] * r).astype(np.float32), (u[:, 0] * r).astype(np.float32)


def blur(frames: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Filter frame ``i`` with ``kernels[i]`` (``(n, k, k)``, or one ``(k, k)`` for all).

    Borders are reflected (``dcb|abcd|cba``). Kernels here are centrally symmetric,
    so correlation and convolution agree. Separable (rank-1) kernels run as two 1-D
    passes, small kernels as OpenCV's direct filter, large ones as a batched FFT over
    all frames at once (several times faster than direct filtering at 13x13 and up).
    """
    x = as_float(frames)
    n, h, w, c = x.shape
    kernels = np.asarray(kernels, dtype=np.float32)
    if kernels.ndim == 2:
        kernels = np.broadcast_to(kernels, (n,) + kernels.shape)
    k = kernels.shape[-1]
    factors = [_separable(kernels[i]) for i in range(n)]
    if all(f is not None for f in factors):
        return np.stack([cv2.sepFilter2D(x[i], -1, fx, fy, borderType=cv2.BORDER_REFLECT_101)
                         for i, (fx, fy) in enumerate(factors)])
    if k <= DIRECT_MAX:
        return np.stack([cv2.filter2D(x[i], -1, kernels[i], borderType=cv2.BORDER_REFLECT_101)
                         for i in range(n)])
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    shape = (sfft.next_fast_len(xp.shape[1], real=True), sfft.next_fast_len(xp.shape[2], real=True))
    fx = sfft.rfft2(xp, s=shape, axes=(1, 2))
    fk = sfft.rfft2(kernels, s=shape, axes=(1, 2))
    fx *= fk[..., None]
    y = sfft.irfft2(fx, s=shape, axes=(1, 2))
    return np.ascontiguousarray(y[:, 2 * p:2 * p + h, 2 * p:2 * p + w])


def resize(frames: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize every frame to ``size`` = (width, height) with the named interpolation."""
    w, h = size
    if frames.shape[1:3] == (h, w):
        return frames
    interp = RESIZE_MODES[mode]
    return np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in frames])


def resize_walk(frames: np.ndarray, sizes: list[tuple[int, int]], common: tuple[int, int], mode: str) -> np.ndarray:
    """Resize frame ``i`` to ``sizes[i]``, then to the clip's ``common`` size where they differ.

    With a random walk on the resize scale each frame passes through its own
    resolution; bringing it to one size keeps the clip one array and one video stream.
    """
    out = []
    interp = RESIZE_MODES[mode]
    cw, ch = common
    for f, (w, h) in zip(frames, sizes):
        if f.shape[:2] != (h, w):
            f = cv2.resize(f, (w, h), interpolation=interp)
        if (w, h) != (cw, ch):
            f = cv2.resize(f, (cw, ch), interpolation=interp)
        out.append(f)
    return np.stack(out)


def _frame_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index)])


def gaussian_noise(frames: np.ndarray, sigma: np.ndarray, gray: bool, seed: int, indices) -> np.ndarray:
    """Add N(0, sigma^2) noise (8-bit units), one field per frame; ``gray``: same in R, G, B. Clamped."""
    x = as_float(frames)
    n, h, w, c = x.shape
    out = np.empty_like(x)
    for i, t in enumerate(indices):
        noise = _frame_rng(seed, t).standard_normal((h, w, 1 if gray else c), dtype=np.float32)
        noise *= np.float32(sigma[i])
        np.add(x[i], noise, out=out[i])
    return np.clip(out, 0, 255, out=out)


def _poisson_field(img8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Real-ESRGAN's Poisson noise of an 8-bit image, in 8-bit units.

    The image (on [0, 1]) is scaled by ``vals = 2^ceil(log2(#distinct values))``,
    Poisson-sampled and scaled back; the noise is the difference.
    """
    distinct = int(np.count_nonzero(np.bincount(img8.ravel(), minlength=256)))
    vals = float(2 ** np.ceil(np.log2(max(distinct, 1))))
    img = img8.astype(np.float64) / 255.0
    out = rng.poisson(img * vals) / vals
    return ((out - img) * 255.0).astype(np.float32)


def poisson_noise(frames: np.ndarray, scale: np.ndarray, gray: bool, seed: int, indices) -> np.ndarray:
    """Add signal-dependent Poisson noise times ``scale``; ``gray``: computed on luma, same in R, G, B."""
    x = as_float(frames)
    out = np.empty_like(x)
    for i, t in enumerate(indices):
        rng = _frame_rng(seed, t)
        if gray:
            img8 = quantize(x[i] @ _LUMA)[..., None]
        else:
            img8 = quantize(x[i])
        noise = _poisson_field(img8, rng)
        noise *= np.float32(scale[i])
        np.add(x[i], noise, out=out[i])
    return np.clip(out, 0, 255, out=out)


def jpeg(frames: np.ndarray, quality) -> np.ndarray:
    """JPEG-compress and decode each frame (OpenCV, 4:2:0) at its own quality (1..100)."""
    x = quantize(frames)
    quality = np.broadcast_to(np.asarray(quality), (x.shape[0],))
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        ok, buf = cv2.imencode(".jpg", x[i][..., ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), int(quality[i])])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out


def video_compress(frames: np.ndarray, codec: str, bits_per_frame: float, preset: str = "medium") -> np.ndarray:
    """Encode the whole clip as one stream at ``bits_per_frame`` and decode it back.

    One stream, so motion-compensated (inter-frame) artifacts are real and shared
    between frames. The stream is timed at 1 frame per second, as RealBasicVSR does:
    the bit rate in bits/s is the budget per frame. Odd or tiny sizes are padded by
    edge replication for 4:2:0 and cropped back.

    Reproducibility: encoding is single-threaded, so the bytes do not depend on the
    machine's core count, and x264's macroblock-tree rate control is off: with it on,
    the bundled libx264 gives different bytes from run to run on the same input.
    """
    x = quantize(frames)
    n, h, w, _ = x.shape
    ph, pw = max(16, h + h % 2), max(16, w + w % 2)
    if (ph, pw) != (h, w):
        x = np.pad(x, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    data = media.encode(x, 1, codec=codec, crf=None, preset=preset, bitrate=max(1000, int(round(bits_per_frame))),
                        threads=1, options={"x264-params": "mbtree=0"} if codec == "libx264" else None)
    y = media.decode(data)
    if y.shape[0] != n:
        raise RuntimeError(f"video compression returned {y.shape[0]} of {n} frames")
    return np.ascontiguousarray(y[:, :h, :w])
