"""Degradation operations on the CPU: pure functions over single frames and clips.

A frame is an ``(H, W, 3)`` array: ``float32`` on the 8-bit scale ``[0, 255]`` for the
linear steps (sharpening, blur, resize, noise, DiffJPEG), ``uint8`` for the coded steps
(libjpeg, video). A clip is a list of frames; inside a chain the frames of one clip may
have different sizes (a per-frame random walk of the resize scale) until a step brings
them to one size. Randomness (noise) comes from a generator per frame, so results do not
depend on how a clip is split. ``torch_ops.py`` has the same operations for a torch device.

Speed levers that keep the bytes (the output does not change):

* blur kernels are trimmed to their real support (outer rings whose total weight is below
  ``TRIM_TOL``) and then filtered by the cheapest exact path: two 1-D passes for rank-1
  kernels, OpenCV's direct filter up to ``DIRECT_MAX`` taps, an FFT above;
* JPEG converts RGB to BGR with a contiguous copy (OpenCV is several times slower on the
  negative-stride view ``x[..., ::-1]``; the coded bytes are the same) and decodes straight to RGB;
* unsharp masking blurs the 8-bit frame itself and the 8-bit 0/1 mask (OpenCV's filter gives
  the same float32 sums as from float copies, reading a quarter of the bytes);
* Poisson noise computes what depends on a pixel's 8-bit value once per value (a look-up);
  the fast Gaussian sampler takes its 16-bit uniforms from the generator's 64-bit outputs
  where those are ``rng.bytes``' bytes; ``quantize`` is OpenCV's saturating conversion;
* DiffJPEG's 8x8 DCTs run as one product per row of blocks (``diffjpeg.py``).

``tests/test_degrade_golden.py`` holds every one of them to the bytes recorded before them.

Faster noise samplers change the samples but not their distribution; they are a recorded
choice (``sampler="fast"``), never applied silently.
"""
from __future__ import annotations

import functools

import av
import cv2
import numpy as np
import scipy.fft as sfft

from .. import media
from . import diffjpeg as dj

#: Resize modes: OpenCV's interpolations (as mmagic) and ``torch_area``, the "area" mode of
#: ``torch.nn.functional.interpolate`` (adaptive average pooling, as Real-ESRGAN).
CV_INTERP = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
RESIZE_MODES = (*CV_INTERP, "torch_area")
#: Codecs the video-compression step accepts (PyAV/FFmpeg encoder names).
VIDEO_CODECS = ("libx264", "mpeg4")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
JPEG_CODECS = ("libjpeg", "diffjpeg")
NOISE_SAMPLERS = ("exact", "fast")
POISSON_UNITS = ("unit", "byte")
#: Trimmed kernels up to this size are applied by direct correlation; larger ones through the FFT
#: (OpenCV's own large-kernel path is several times slower than scipy's FFT here).
DIRECT_MAX = 11
#: Outer kernel rings are dropped while their total |weight| stays below this: on 8-bit values
#: that moves a result by < 3e-7, below float32 resolution for values above 4.
TRIM_TOL = 1e-9
#: The "fast" Poisson sampler draws counts with mean >= this from a rounded normal approximation.
POISSON_NORMAL_MIN = 25.0

# ITU-R BT.601 luma weights, as Real-ESRGAN's gray noise
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


#: Beyond this magnitude OpenCV's float -> uint8 conversion (a 32-bit integer rounding) would
#: overflow; ``quantize`` then takes NumPy's path.
_CV_ROUND_MAX = 2.0 ** 30


def quantize(x: np.ndarray) -> np.ndarray:
    """Clamp to [0, 255] and round (half to even) to ``uint8``.

    For float32 frames OpenCV's saturating conversion does it in one pass (round to nearest
    even, then saturate: the same bytes as ``clip(rint(x), 0, 255)``, tested), when the values
    stay within ``_CV_ROUND_MAX``.
    """
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.float32 and x.ndim == 3 and x.size and x.shape[2] <= 4:
        flat = x.reshape(x.shape[0], -1)
        lo, hi = cv2.minMaxLoc(flat)[:2]
        if -_CV_ROUND_MAX < lo and hi < _CV_ROUND_MAX:
            return cv2.add(x, 0.0, dtype=cv2.CV_8U).reshape(x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def distinct_values(img8: np.ndarray) -> int:
    """How many of the 256 byte values occur in ``img8`` (a histogram by OpenCV)."""
    return int(np.count_nonzero(byte_histogram(img8)))


def byte_histogram(img8: np.ndarray) -> np.ndarray:
    """Counts of the 256 byte values in a uint8 array."""
    flat = np.ascontiguousarray(img8).reshape(1, -1) if img8.ndim != 2 else img8
    return cv2.calcHist([flat], [0], None, [256], [0, 256]).ravel()


def as_float(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.float32 else x.astype(np.float32)


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of frame ``index``'s noise field in a step seeded with ``seed``."""
    return np.random.default_rng([int(seed), int(index)])


# ---- sizes ---------------------------------------------------------------------------------

def scaled_size(base: tuple[float, float], scale: float, even: bool = False) -> tuple[int, int]:
    """(width, height) of ``base`` times ``scale``, floored (to even numbers with ``even``, as mmagic)."""
    if even:
        return tuple(max(2, 2 * int(v * scale // 2)) for v in base)  # type: ignore[return-value]
    return tuple(max(1, int(v * scale)) for v in base)  # type: ignore[return-value]


# ---- unsharp masking -----------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def gaussian_taps(size: int, sigma: float) -> np.ndarray:
    """OpenCV's 1-D Gaussian of ``size`` taps (``sigma`` 0: its rule from the size), float32."""
    return cv2.getGaussianKernel(size, sigma, cv2.CV_64F).ravel().astype(np.float32)


def usm(frame: np.ndarray, taps: np.ndarray, weight: float, threshold: float) -> np.ndarray:
    """Unsharp masking (Real-ESRGAN ``USMSharp``, mmagic ``UnsharpMasking``), float32 out.

    ``taps``: the 1-D Gaussian (its outer product is the references' 2-D kernel). Both blurs
    read 8-bit values where they can (an 8-bit frame, the 0/1 mask): OpenCV's filter gives the
    same float32 sums from 8-bit input as from its float32 copy, reading a quarter of the bytes.
    The residual is computed once and the blend is done in place.
    """
    x = as_float(frame)
    src = frame if frame.dtype == np.uint8 else x
    blurred = cv2.sepFilter2D(src, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_REFLECT_101)
    residual = cv2.subtract(x, blurred)
    h, w, c = x.shape
    # |residual| > threshold as 0 / 1 bytes: inRange marks |r| <= threshold with 255, the
    # threshold turns 0 into 1 and 255 into 0
    inside = cv2.inRange(residual.reshape(h, w * c), -float(threshold), float(threshold))
    mask = cv2.threshold(inside, 0, 1, cv2.THRESH_BINARY_INV)[1].reshape(h, w, c)
    soft = cv2.sepFilter2D(mask, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_REFLECT_101)
    sharp = cv2.scaleAdd(residual, float(weight), x, dst=residual)                # x + weight * residual
    np.clip(sharp, 0, 255, out=sharp)
    d = cv2.subtract(sharp, x, dst=sharp)
    return cv2.add(x, cv2.multiply(soft, d, dst=soft), dst=soft)                   # soft sharp + (1 - soft) x


# ---- blur ----------------------------------------------------------------------------------

def trim(kernel: np.ndarray, tol: float = TRIM_TOL) -> np.ndarray:
    """The kernel without outer rings whose total |weight| is below ``tol`` (stays centred and odd)."""
    k = np.asarray(kernel)
    dropped = 0.0
    while k.shape[0] > 1 and tol >= 0:
        ring = np.abs(k).sum() - np.abs(k[1:-1, 1:-1]).sum()
        if dropped + ring > tol:
            break
        dropped += ring
        k = k[1:-1, 1:-1]
    return k


def separable(kernel: np.ndarray, tol: float = 1e-7):
    """``(row, column)`` 1-D float32 factors if the kernel is rank 1 (isotropic Gaussians are), else None."""
    if kernel.shape[0] == 1:
        return np.ones(1, np.float32), (kernel[0] if kernel.ndim == 2 else kernel).astype(np.float32).ravel()
    u, sv, vt = np.linalg.svd(np.asarray(kernel, dtype=np.float64))
    if sv[1] > tol * sv[0]:
        return None
    r = np.sqrt(sv[0])
    return (vt[0] * r).astype(np.float32), (u[:, 0] * r).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _kernel_spectrum(kbytes: bytes, k: int, shape: tuple[int, int]) -> np.ndarray:
    kernel = np.frombuffer(kbytes, dtype=np.float32).reshape(k, k)
    return sfft.rfft2(kernel, s=shape)


def blur_path(kernel: np.ndarray) -> str:
    """Which exact path ``blur`` takes for this kernel: "separable", "direct" or "fft"."""
    k = trim(kernel)
    if separable(k) is not None:
        return "separable"
    return "direct" if k.shape[0] <= DIRECT_MAX else "fft"


def blur(frame: np.ndarray, kernel: np.ndarray, tol: float = TRIM_TOL) -> np.ndarray:
    """Correlate a frame with ``kernel`` (``(k, k)``, k odd), reflected borders (``dcb|abcd|cba``).

    The kernels here are centrally symmetric, so correlation and convolution agree. ``tol``:
    the trimming bound (negative: keep the whole kernel).
    """
    x = as_float(frame)
    k = trim(kernel, tol)
    factors = separable(k)
    if factors is not None:
        fx, fy = factors
        return cv2.sepFilter2D(x, -1, fx, fy, borderType=cv2.BORDER_REFLECT_101)
    k32 = np.ascontiguousarray(k, dtype=np.float32)
    if k.shape[0] <= DIRECT_MAX:
        return cv2.filter2D(x, -1, k32, borderType=cv2.BORDER_REFLECT_101)
    h, w, _ = x.shape
    p = k.shape[0] // 2
    xp = np.pad(x, ((p, p), (p, p), (0, 0)), mode="reflect")
    shape = (sfft.next_fast_len(xp.shape[0], real=True), sfft.next_fast_len(xp.shape[1], real=True))
    fx = sfft.rfft2(xp, s=shape, axes=(0, 1))
    fx *= _kernel_spectrum(k32.tobytes(), k.shape[0], shape)[..., None]
    y = sfft.irfft2(fx, s=shape, axes=(0, 1))
    return np.ascontiguousarray(y[2 * p:2 * p + h, 2 * p:2 * p + w])


# ---- resize --------------------------------------------------------------------------------

def _pool_bounds(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Bins of adaptive average pooling: output i averages inputs [floor(i n/m), ceil((i+1) n/m))."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, ((i + 1) * n_in + n_out - 1) // n_out


def _pool_rows(x: np.ndarray, n_out: int) -> np.ndarray:
    """Adaptive average pooling of the rows of an ``(H, W, C)`` float32 array to ``n_out`` rows.

    The bins have one or two widths; for each, OpenCV's box filter gives the mean of every
    window of that width (double accumulation), and the bins pick their windows (row copies).
    """
    start, end = _pool_bounds(x.shape[0], n_out)
    width = end - start
    out = np.empty((n_out,) + x.shape[1:], np.float32)
    for w in np.unique(width):
        sel = np.nonzero(width == w)[0]
        src = x if w == 1 else cv2.boxFilter(x, -1, (1, int(w)), anchor=(0, 0), normalize=True,
                                             borderType=cv2.BORDER_REPLICATE)
        out[sel] = src[start[sel]]
    return out


def torch_area(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``F.interpolate(mode="area")`` of one frame: adaptive average pooling to ``size`` = (w, h)."""
    x = as_float(frame)
    ow, oh = size
    if x.shape[0] != oh:
        x = _pool_rows(x, oh)
    if x.shape[1] != ow:   # columns: pool the rows of the transposed frame
        x = cv2.transpose(_pool_rows(cv2.transpose(x), ow))
    return x


def resize(frame: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize a frame to ``size`` = (width, height) with the named interpolation."""
    w, h = size
    if frame.shape[:2] == (h, w):
        return frame
    if mode == "torch_area":
        return torch_area(frame, size)
    return cv2.resize(frame, (w, h), interpolation=CV_INTERP[mode])


# ---- noise ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def normal_table() -> np.ndarray:
    """65536 standard-normal quantiles at (i + 0.5) / 65536, rescaled to unit variance (float32).

    Indexing it with uniform 16-bit integers draws from a normal distribution to within a
    1/65536 quantile grid (tails cut at 4.2 sigma), several times faster than a ziggurat.
    """
    from scipy.special import ndtri

    q = ndtri((np.arange(65536) + 0.5) / 65536)
    return (q / q.std()).astype(np.float32)


def uniform16(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniform 16-bit integers: the bytes of ``rng.bytes(2 n)``.

    ``Generator.bytes`` packs 32-bit draws, two per 64-bit output of PCG64; when it takes an
    even number of them the same bytes come straight from the 64-bit outputs (``random_raw``)
    and the generator ends in the same state, at half the cost.
    """
    nbytes = 2 * n
    n32 = (nbytes + 3) // 4
    bg = rng.bit_generator
    if n32 % 2 == 0 and np.little_endian and isinstance(bg, np.random.PCG64) and not bg.state["has_uint32"]:
        return bg.random_raw(n32 // 2).view(np.uint16)[:n]
    return np.frombuffer(rng.bytes(nbytes), dtype=np.uint16)


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...], sampler: str = "exact") -> np.ndarray:
    """Standard normal float32 samples, by NumPy's sampler ("exact") or the quantile table ("fast")."""
    if sampler == "exact":
        return rng.standard_normal(shape, dtype=np.float32)
    n = int(np.prod(shape))
    return normal_table().take(uniform16(rng, n)).reshape(shape)


def gaussian_noise(frame: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator,
                   sampler: str = "exact") -> np.ndarray:
    """Add N(0, sigma^2) noise (8-bit units), ``gray``: the same field in R, G, B. Clamped to [0, 255]."""
    x = as_float(frame)
    h, w, c = x.shape
    noise = standard_normal(rng, (h, w, 1 if gray else c), sampler)
    noise *= np.float32(sigma)
    out = np.add(x, noise, out=None if gray else noise)
    return np.clip(out, 0, 255, out=out)


def _fast_counts(lam: np.ndarray, root: np.ndarray, small: np.ndarray | None,
                 rng: np.random.Generator) -> np.ndarray:
    """The "fast" Poisson counts of ``poisson_counts`` given ``sqrt(lam)`` and the mask of the
    means below ``POISSON_NORMAL_MIN`` (None: there are none); float32, the same operations."""
    z = standard_normal(rng, lam.shape, "fast")
    out = np.multiply(root, z)
    z *= z
    z -= 1
    z *= np.float32(1 / 6)
    out += z
    out += lam
    np.rint(out, out=out)
    if small is not None:
        out[small] = rng.poisson(lam[small].astype(np.float64))
    return np.maximum(out, 0, out=out)


def poisson_counts(lam: np.ndarray, rng: np.random.Generator, sampler: str = "exact") -> np.ndarray:
    """Poisson counts of mean ``lam``: NumPy's exact sampler (float64 out), or ("fast", float32 in
    and out) where the mean is at least ``POISSON_NORMAL_MIN`` a rounded normal with the
    Cornish-Fisher skew term, ``rint(lam + sqrt(lam) z + (z^2 - 1) / 6)``: the Poisson mean,
    variance (+ 1/12 from the rounding) and skewness 1/sqrt(lam), to O(1/lam)."""
    if sampler == "exact":
        return rng.poisson(lam).astype(np.float64)
    lam = np.asarray(lam, dtype=np.float32)
    small = lam < POISSON_NORMAL_MIN
    return _fast_counts(lam, np.sqrt(lam), small if small.any() else None, rng)


def _lut(img8: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[img8]`` for a 256-entry table (OpenCV's look-up, any table dtype it takes)."""
    flat = np.ascontiguousarray(img8).reshape(img8.shape[0], -1)
    return cv2.LUT(flat, table.reshape(1, 256)).reshape(img8.shape)


def poisson_noise(frame: np.ndarray, scale: float, gray: bool, rng: np.random.Generator,
                  sampler: str = "exact", units: str = "unit") -> np.ndarray:
    """Add signal-dependent Poisson noise times ``scale`` (Real-ESRGAN / mmagic), clamped.

    The image is rounded to 8 bits (on luma for ``gray``, the same noise in R, G, B), put on
    [0, 1] (``units="unit"``, Real-ESRGAN) or left on [0, 255] (``"byte"``, mmagic), multiplied
    by ``vals = 2^ceil(log2(#distinct values))``, drawn as Poisson counts and divided back;
    the noise is the difference, in 8-bit units.

    The rounded image has at most 256 values, so everything that depends on a pixel's value
    only (its level on [0, 1], the mean, its square root, whether the mean is small) is worked
    out once per value and looked up: the same float operations on the same values.
    """
    x = as_float(frame)
    img8 = quantize(x @ _LUMA)[..., None] if gray else quantize(x)
    hist = byte_histogram(img8)
    distinct = int(np.count_nonzero(hist))
    vals = float(2 ** np.ceil(np.log2(max(distinct, 1))))
    dtype = np.float64 if sampler == "exact" else np.float32
    levels = np.arange(256, dtype=dtype)
    if units == "unit":
        levels /= dtype(255)
    lam_t = levels * dtype(vals)
    img = _lut(img8, levels)
    if sampler == "exact":
        noise = poisson_counts(_lut(img8, lam_t), rng, sampler)
    else:
        small_t = lam_t < POISSON_NORMAL_MIN
        small = _lut(img8, small_t.view(np.uint8)).view(bool) if (small_t & (hist > 0)).any() else None
        noise = _fast_counts(_lut(img8, lam_t), _lut(img8, np.sqrt(lam_t)), small, rng)
    noise /= dtype(vals)
    noise -= img
    noise = noise.astype(np.float32, copy=False)
    noise *= np.float32(scale * 255.0 if units == "unit" else scale)
    out = np.add(x, noise, out=None if gray else noise)
    return np.clip(out, 0, 255, out=out)


# ---- JPEG ----------------------------------------------------------------------------------

_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)   # OpenCV >= 4.11


def jpeg(frame: np.ndarray, quality: float) -> np.ndarray:
    """JPEG-compress and decode a frame with OpenCV's libjpeg (4:2:0) at integer ``quality`` (1..100)."""
    bgr = cv2.cvtColor(quantize(frame), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(round(quality))])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    if _IMREAD_RGB is not None:   # libjpeg-turbo writes RGB directly: the same bytes as BGR + a swap
        return cv2.imdecode(buf, _IMREAD_RGB)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def diff_jpeg(frame: np.ndarray, quality: float) -> np.ndarray:
    """Real-ESRGAN's JPEG model (BasicSR ``DiffJPEG``) of a frame clamped to [0, 255] first (as
    Real-ESRGAN does before it), float32 out (see ``diffjpeg.py``)."""
    return dj.compress_decompress(np.clip(as_float(frame), 0, 255), float(quality))


def jpeg_codec(frame: np.ndarray, quality: float, codec: str) -> np.ndarray:
    return diff_jpeg(frame, quality) if codec == "diffjpeg" else jpeg(frame, quality)


# ---- video ---------------------------------------------------------------------------------

def common_size(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Frames brought to the first frame's size as a PyAV encoder does it (swscale, bilinear).

    mmagic hands frames of different sizes to one PyAV stream set to the first frame's size;
    PyAV rescales the others. Done here beforehand, in RGB, so the encode itself is unchanged.
    """
    h, w = frames[0].shape[:2]
    out = []
    for f in frames:
        if f.shape[:2] != (h, w):
            vf = av.VideoFrame.from_ndarray(quantize(f), format="rgb24")
            f = vf.reformat(width=w, height=h).to_ndarray()
        out.append(f)
    return out


def video_compress(frames: list[np.ndarray] | np.ndarray, codec: str, bits_per_frame: float,
                   preset: str = "medium") -> np.ndarray:
    """Encode the clip as one stream at ``bits_per_frame`` and decode it back: ``(T, H, W, 3)`` uint8.

    One stream, so motion-compensated (inter-frame) artifacts are real and shared between
    frames. The stream is timed at 1 frame per second, as RealBasicVSR does: the bit rate
    in bits/s is the budget per frame. Frames of other sizes than the first are rescaled to
    it (as PyAV does for the reference). Odd or tiny sizes are padded by edge replication for
    4:2:0 and cropped back.

    Reproducibility: encoding is single-threaded, so the bytes do not depend on the
    machine's core count, and x264's macroblock-tree rate control is off: with it on,
    the bundled libx264 gives different bytes from run to run on the same input.
    """
    x = np.stack([quantize(f) for f in common_size(list(frames))])
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
