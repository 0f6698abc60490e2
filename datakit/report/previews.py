"""Browser-friendly previews of clips: animated WebP, frame strips, zoomed crops.

Pure functions from frame arrays to images/bytes; no proprietary codecs needed to view them.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def fit(frames: np.ndarray, max_width: int) -> np.ndarray:
    """Downscale (area) so frames are at most ``max_width`` wide; never upscale."""
    t, h, w, _ = frames.shape
    if w <= max_width:
        return frames
    size = (max_width, max(2, round(h * max_width / w)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BOX)) for f in frames])


def upscale_nearest(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour upscale to (width, height): LR pixels stay visible as blocks."""
    t, h, w, _ = frames.shape
    ys = np.minimum((np.arange(height) * h) // height, h - 1)
    xs = np.minimum((np.arange(width) * w) // width, w - 1)
    return frames[:, ys][:, :, xs]


def subsample(frames: np.ndarray, max_frames: int) -> tuple[np.ndarray, int]:
    """At most ``max_frames`` evenly spaced frames, and the step used."""
    step = max(1, int(np.ceil(frames.shape[0] / max_frames)))
    return frames[::step], step


def animated_webp(frames: np.ndarray, fps: float, quality: int = 80) -> bytes:
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="WEBP", save_all=True, append_images=images[1:], duration=int(round(1000 / fps)),
                   loop=0, quality=quality, method=4)
    return buf.getvalue()


def still_webp(image: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="WEBP", quality=quality)
    return buf.getvalue()


def strip(frames: np.ndarray, n: int = 6) -> np.ndarray:
    """``n`` evenly spaced frames side by side with a 2-pixel gap."""
    idx = np.linspace(0, frames.shape[0] - 1, min(n, frames.shape[0])).round().astype(int)
    t, h, w, c = frames.shape
    out = np.full((h, len(idx) * (w + 2) - 2, c), 255, np.uint8)
    for j, i in enumerate(idx):
        out[:, j * (w + 2): j * (w + 2) + w] = frames[i]
    return out


def centre_crop_box(width: int, height: int, frac: float = 0.25) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a centred crop covering ``frac`` of each side."""
    cw, ch = max(2, int(width * frac)), max(2, int(height * frac))
    x0, y0 = (width - cw) // 2, (height - ch) // 2
    return x0, y0, x0 + cw, y0 + ch


def zoom(frame: np.ndarray, box: tuple[int, int, int, int], scale: int = 4) -> np.ndarray:
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    return np.repeat(np.repeat(crop, scale, axis=0), scale, axis=1)
