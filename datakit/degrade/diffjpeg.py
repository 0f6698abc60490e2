"""The JPEG model Real-ESRGAN degrades with (BasicSR's ``DiffJPEG``, non-differentiable mode).

A JPEG round trip in floating point, which differs from a libjpeg encoder in ways that shape
the artifacts Real-ESRGAN trains on, so ``realesrgan`` uses it by default:

* the image is padded with black to a multiple of 16 (bottom and right), not edge-replicated;
* colours go to JFIF YCbCr in float (no rounding), chroma is averaged over 2x2 blocks and
  brought back by repetition (no "fancy" upsampling);
* coefficients of the orthonormal 8x8 DCT are divided by the standard tables (ITU T.81
  Annex K) times ``factor(quality)`` without the integer rounding and clamping libjpeg does,
  and with the tables transposed (the reference indexes them [horizontal, vertical]);
  rounding is half to even;
* any quality in (0, 100] works, fractional ones too; the output is float, clamped to [0, 255].

The constants here are shared with the torch implementation (``torch_ops.py``).
"""
from __future__ import annotations

import cv2
import numpy as np

#: ITU T.81 Annex K quantization tables, natural order (row = vertical frequency).
LUMA_TABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=np.float32)
CHROMA_TABLE = np.full((8, 8), 99, dtype=np.float32)
CHROMA_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
#: The tables as the reference applies them to coefficients [vertical, horizontal].
Y_STEPS = np.ascontiguousarray(LUMA_TABLE.T)
C_STEPS = np.ascontiguousarray(CHROMA_TABLE.T)
#: JFIF RGB -> YCbCr (rows: Y, Cb, Cr) and back; Cb and Cr are offset by 128.
RGB_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
                      dtype=np.float32)
YCC_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=np.float32)
YCC_OFFSET = np.array([0.0, 128.0, 128.0], dtype=np.float32)


def quality_factor(quality: float) -> float:
    """The table multiplier of a quality: 50 / q below 50, else (200 - 2 q) / 100 (0 at 100)."""
    q = float(quality)
    if not 0 < q <= 100:
        raise ValueError(f"JPEG quality must be in (0, 100], got {quality}")
    return 50.0 / q if q < 50 else (200.0 - 2.0 * q) / 100.0


#: The orthonormal 8-point DCT-II matrix (rows: frequencies): coefficients = C B C^T.
DCT8 = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)]
                 for u in range(8)], dtype=np.float32)


def _round_trip_plane(plane: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Blockwise DCT, quantize with ``steps`` (8x8), dequantize, inverse DCT; plane dims multiples of 8.

    Each 8x8 block B becomes C B C^T and back, computed for a whole row of blocks at a time in
    the plane's own layout (``[block row, u, block column, v]``): one matrix product per row of
    blocks for C B and one batched product for (C B) C^T, the same sums of the same eight products
    as block by block, without the per-block products and transposes.
    """
    h, w = plane.shape
    p = plane - np.float32(128)
    coef = np.matmul(DCT8, p.reshape(h // 8, 8, w)).reshape(h // 8, 8, w // 8, 8) @ DCT8.T
    q = steps[:, None, :]                             # steps[u, v] on [block row, u, block column, v]
    coef /= q
    np.rint(coef, out=coef)
    coef *= q
    rec = np.matmul(DCT8.T, coef.reshape(h // 8, 8, w)).reshape(h // 8, 8, w // 8, 8) @ DCT8
    rec += np.float32(128)
    return rec.reshape(h, w)


#: ``cv2.transform`` matrices (3 x 4: linear part and offset) of the two colour conversions.
_TO_YCC = np.hstack([RGB_TO_YCC, YCC_OFFSET[:, None]]).astype(np.float64)
_TO_RGB = np.hstack([YCC_TO_RGB, -(YCC_TO_RGB.astype(np.float64) @ YCC_OFFSET)[:, None]])


def compress_decompress(frame: np.ndarray, quality: float) -> np.ndarray:
    """JPEG round trip of an ``(H, W, 3)`` float frame on [0, 255]; float32 out, clamped to [0, 255]."""
    factor = np.float32(quality_factor(quality))
    x = np.asarray(frame, dtype=np.float32)
    if factor == 0:
        return np.clip(x, 0, 255)
    h, w, _ = x.shape
    ph, pw = -h % 16, -w % 16
    if ph or pw:
        x = cv2.copyMakeBorder(x, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    H, W = x.shape[:2]
    y, cb, cr = (cv2.transform(x, _TO_YCC[i:i + 1]) for i in range(3))
    planes = [_round_trip_plane(y, Y_STEPS * factor)]
    for c in (cb, cr):
        sub = cv2.resize(c, (W // 2, H // 2), interpolation=cv2.INTER_AREA)         # 2x2 means
        rec = _round_trip_plane(sub, C_STEPS * factor)
        planes.append(cv2.resize(rec, (W, H), interpolation=cv2.INTER_NEAREST))   # repeated 2x2
    out = cv2.transform(cv2.merge(planes), _TO_RGB)
    if ph or pw:
        out = out[:h, :w]
    return np.clip(out, 0, 255)
