"""The Q-Align method's fixed parts: prompts, rating words and weights, frame sampling,
square padding (shared by the package and both of its backends)."""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

RATING_WORDS = ("excellent", "good", "fair", "poor", "bad")
RATING_WEIGHTS = (5.0, 4.0, 3.0, 2.0, 1.0)
IMAGE_PLACEHOLDER = "<|image|>"
Task = Literal["quality", "aesthetics"]
Kind = Literal["image", "video"]


def question(task: Task, kind: Kind) -> str:
    return f"How would you rate the {task} of this {kind}?"


def answer_prefix(task: Task, kind: Kind) -> str:
    return f"The {task} of the {kind} is"


def onealign_prompt(task: Task, kind: Kind) -> str:
    """The conversation one-align was trained on, with the image placeholder."""
    return f"USER: {question(task, kind)}\n{IMAGE_PLACEHOLDER}\nASSISTANT: {answer_prefix(task, kind)}"


def rating_score(logits) -> np.ndarray:
    """Scores 1..5 from logits over :data:`RATING_WORDS` (last axis): softmax, weighted 5..1."""
    x = np.asarray(logits, dtype=np.float64)
    p = np.exp(x - x.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return p @ np.asarray(RATING_WEIGHTS)


def video_frame_indices(num_frames: int, fps: float) -> list[int]:
    """One frame per second, as the official video scorer samples; at least the first frame."""
    idx = [int(fps * i) for i in range(int(num_frames / fps))] if fps > 0 else []
    return [i for i in idx if i < num_frames] or [0]


def pad_to_square(img: np.ndarray, fill: Sequence[int]) -> np.ndarray:
    """The image centred on a square canvas of ``fill`` colour (offset rounded down)."""
    h, w = img.shape[:2]
    if h == w:
        return img
    s = max(h, w)
    out = np.empty((s, s, img.shape[2]), dtype=img.dtype)
    out[...] = np.asarray(fill, dtype=img.dtype)
    y, x = (s - h) // 2, (s - w) // 2
    out[y:y + h, x:x + w] = img
    return out
