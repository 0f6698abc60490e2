"""Q-Align: a vision-language model's own rating of a picture or a clip (UniMMVSR A.2).

The method (Wu et al., "Q-Align", ICML 2024): ask the model "How would you rate the
quality of this image?" (or "... of this video?"), let it start answering "The quality of
the image is", and read the logits it gives the five rating words *excellent, good, fair,
poor, bad* at the next position. Their softmax, weighted 5, 4, 3, 2, 1, is the score
(1 = bad ... 5 = excellent). Q-Align's own ``evaluate/scorer.py`` weights 1, 0.75 ... 0
instead: the same number mapped to 0..1 (``(score - 1) / 4``).

- images: each frame is padded to a square with the processor's mean colour (so the
  centre crop keeps the whole frame), then preprocessed and scored;
- videos: one frame per second, as the official video loader samples (frame
  ``int(fps * i)`` for ``i < int(frames / fps)``), all frames' tokens in one prompt.

Two model layouts load from a local directory (:func:`load` picks by ``config.json``):

- ``mplug_owl2``: the released ``q-future/one-align`` weights. Their remote code cannot
  run on transformers 5 (:data:`owl2.REMOTE_CODE_BLOCKERS`), so :mod:`.owl2` rebuilds the
  architecture and loads the released state dict unchanged;
- any transformers-native vision-language model that ``AutoModelForImageTextToText`` and
  ``AutoProcessor`` load (LLaVA, Qwen2-VL, Idefics3, ...): the same method through its chat
  template. Untrained for rating, such a model gives a weaker signal than one-align.

Nothing is downloaded; weights are looked for where :func:`datakit.scoring.weights.qalign_model`
says. Q-Align's code and weights are under the S-Lab License 1.0 (non-commercial).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..weights import MissingWeights
from .prompts import (IMAGE_PLACEHOLDER, RATING_WEIGHTS, RATING_WORDS, Kind, Task, answer_prefix,  # noqa: F401
                      onealign_prompt, pad_to_square, question, rating_score, video_frame_indices)


class ModelNotFound(MissingWeights):
    """No Q-Align model directory where it was looked for; the message says where."""


class Backend(Protocol):
    name: str

    def image_logits(self, frames: Sequence[np.ndarray], task: Task) -> np.ndarray: ...

    def video_logits(self, videos: Sequence[Sequence[np.ndarray]], task: Task) -> np.ndarray: ...

    def describe(self) -> dict: ...


@dataclass
class QAlignScorer:
    """Q-Align scores of frames and clips with one loaded model."""

    backend: Backend
    model_id: str
    synthetic: bool = False
    batch_size: int = 8            # images (or videos) per forward pass

    def score_images(self, frames: Sequence[np.ndarray], task: Task = "quality") -> list[float]:
        """One score (1..5) per RGB uint8 frame."""
        out: list[float] = []
        for s in range(0, len(frames), self.batch_size):
            out += rating_score(self.backend.image_logits(frames[s:s + self.batch_size], task)).tolist()
        return out

    def score_videos(self, videos: Sequence[Sequence[np.ndarray]], task: Task = "quality") -> list[float]:
        """One score (1..5) per video, each given as the frames to show (see :func:`video_frame_indices`).
        Videos with the same number of frames share a forward pass."""
        out = [0.0] * len(videos)
        by_len: dict[int, list[int]] = {}
        for i, v in enumerate(videos):
            by_len.setdefault(len(v), []).append(i)
        for idx in by_len.values():
            for s in range(0, len(idx), self.batch_size):
                part = idx[s:s + self.batch_size]
                for i, v in zip(part, rating_score(self.backend.video_logits([videos[j] for j in part], task))):
                    out[i] = float(v)
        return out

    def score_clip(self, frames: np.ndarray, fps: float, task: Task = "quality") -> float:
        """A clip (``(T, H, W, 3)`` at ``fps``) scored as a video, one frame per second."""
        return self.score_videos([[frames[i] for i in video_frame_indices(len(frames), fps)]], task)[0]

    def describe(self) -> dict:
        return {"model_id": self.model_id, "synthetic": self.synthetic, **self.backend.describe()}


def model_type(path: str | Path) -> str:
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError) as e:
        raise ModelNotFound(f"{path}: no readable config.json ({e})") from None


def load(model: str, device: str = "auto", dtype: str = "auto", batch_size: int = 8) -> QAlignScorer:
    """A scorer for ``model`` (a directory, or a hub id found on disk: see ``weights.qalign_model``).

    ``dtype`` ``auto`` is float16 on a GPU (as the official scorer runs) and float32 on a CPU.
    """
    from ... import quiet
    from ...tiny import is_tiny
    from ..weights import qalign_model

    quiet.model_libraries()

    wf = qalign_model(model)
    path = wf.find()
    if path is None:
        raise ModelNotFound(wf.message())
    dev, dt = _device_dtype(device, dtype)
    if model_type(path) == "mplug_owl2":
        from .onealign import OneAlign

        backend = OneAlign(path, dev, dt)
    else:
        from .native import NativeVLM

        backend = NativeVLM(path, dev, dt)
    name = model if not Path(model).expanduser().exists() else Path(path).name
    return QAlignScorer(backend, name, synthetic=is_tiny(path), batch_size=batch_size)


def _device_dtype(device: str, dtype: str):
    import torch

    from ...sdedit.wan import resolve_device, resolve_dtype

    dev = resolve_device(device)
    if dtype == "auto":
        return dev, torch.float16 if dev.type == "cuda" else torch.float32
    return dev, resolve_dtype(dtype, dev)


__all__ = ["RATING_WEIGHTS", "RATING_WORDS", "ModelNotFound", "QAlignScorer", "answer_prefix", "load",
           "onealign_prompt", "pad_to_square", "question", "rating_score", "video_frame_indices"]
