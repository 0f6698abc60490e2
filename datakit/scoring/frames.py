"""Frame helpers shared by the scorers: which frames to look at, luma, resizing.

Frames are ``uint8`` RGB arrays shaped ``(T, H, W, 3)`` as :func:`datakit.media.decode`
returns them. Nothing here imports torch.
"""
from __future__ import annotations

import cv2
import numpy as np


def sample_indices(num_frames: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over a clip: the centre of each of ``count`` equal parts.

    Centres avoid the first and last frame, where cuts and fades sit. Fewer frames
    than asked for gives every frame once.
    """
    if num_frames <= 0:
        return []
    count = max(1, min(count, num_frames))
    return [int((i + 0.5) * num_frames / count) for i in range(count)]


def luma(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB frames, ``float32`` in [0, 255], shape ``(..., H, W)``."""
    f = np.asarray(frames, dtype=np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def resize_height(img: np.ndarray, height: int) -> np.ndarray:
    """Area-resize one image (H, W[, C]) to ``height`` rows keeping the aspect ratio; never upscales."""
    h, w = img.shape[:2]
    if h <= height:
        return img
    width = max(1, round(w * height / h))
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
