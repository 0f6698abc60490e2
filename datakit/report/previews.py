"""Browser-friendly previews of clips: frame sprites for the player, stills for thumbnails.

Pure functions from frame arrays to images/bytes. A sprite holds a clip's frames in a
grid in one WebP file (lossless for LR, so the degraded pixels are shown exactly); the
report's player draws one cell at a time, so stepping is exact and no video codec is
needed in the browser.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

WEBP_MAX_SIDE = 16383


@dataclass
class Sprite:
    data: bytes
    cols: int
    rows: int
    frames: int          # cells in the sprite
    width: int           # one cell
    height: int
    step: int            # the sprite holds every step-th frame of the clip


def fit(frames: np.ndarray, max_width: int) -> np.ndarray:
    """Downscale (area) so frames are at most ``max_width`` wide; never upscale."""
    _, h, w, _ = frames.shape
    if w <= max_width:
        return frames
    size = (max_width, max(2, round(h * max_width / w)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BOX)) for f in frames])


def subsample(frames: np.ndarray, max_frames: int) -> tuple[np.ndarray, int]:
    """At most ``max_frames`` evenly spaced frames, and the step used."""
    step = max(1, int(np.ceil(frames.shape[0] / max_frames)))
    return frames[::step], step


def still_webp(image: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="WEBP", quality=quality)
    return buf.getvalue()


def sprite(frames: np.ndarray, step: int = 1, lossless: bool = False, quality: int = 88) -> Sprite:
    """The frames in a near-square grid, row by row, as one WebP image."""
    t, h, w, c = frames.shape
    cols = max(1, min(t, round(math.sqrt(t * h / w)), WEBP_MAX_SIDE // w))
    rows = math.ceil(t / cols)
    if rows * h > WEBP_MAX_SIDE:
        raise ValueError(f"{t} frames of {w}x{h} do not fit one WebP sprite; subsample first")
    grid = np.zeros((rows * h, cols * w, c), np.uint8)
    for i in range(t):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = frames[i]
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="WEBP", lossless=lossless, quality=100 if lossless else quality,
                               method=4)
    return Sprite(buf.getvalue(), cols, rows, t, w, h, step)


def strip(frames: np.ndarray, n: int = 4) -> np.ndarray:
    """``n`` evenly spaced frames (first and last included) side by side, one image."""
    idx = np.unique(np.linspace(0, frames.shape[0] - 1, min(n, frames.shape[0])).round().astype(int))
    return np.concatenate(list(frames[idx]), axis=1)
