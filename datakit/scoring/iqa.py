"""MUSIQ and CLIP-IQA through pyiqa, with weights from local files only.

pyiqa would download missing weights on first use; datakit never lets it: every metric is
built with ``pretrained=False`` and its weights are loaded from the files that
:mod:`datakit.scoring.weights` finds (pyiqa's own cache layout under ``$TORCH_HOME/hub``).

- ``musiq``: MUSIQ trained on KonIQ-10k (pyiqa ``musiq``), about 0..100, higher is better.
- ``clipiqa``: CLIP-IQA with pyiqa's prompt ensemble on OpenAI CLIP RN50, 0..1, higher is better.
- ``clipiqa_plus``: CLIP-IQA+ (learned prompts) on the same CLIP, 0..1, higher is better.

``RN50.pt`` must be OpenAI's TorchScript archive (what pyiqa caches): pyiqa 0.1.16 cannot
read a plain state dict there (it retries ``torch.load`` on an exhausted file handle).

Images are scored at their own resolution (``max_side`` can cap it for speed). pyiqa is
under a non-commercial licence (its own and the models').
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import weights
from .frames import resize_height

PYIQA_METRICS = ("musiq", "clipiqa", "clipiqa_plus")


def _quiet_pyiqa():
    import logging
    import os
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import pyiqa

    logging.getLogger("pyiqa").setLevel(logging.WARNING)
    return pyiqa


def build_metric(name: str, device: str = "cpu"):
    """A pyiqa ``InferenceModel`` for ``name`` with its local weights loaded (strict).

    Raises :class:`~datakit.scoring.weights.MissingWeights` naming the file and the folders searched.
    """
    import torch

    files = [wf.require() for wf in weights.files_for(name)]
    pyiqa = _quiet_pyiqa()
    if name == "musiq":
        # pretrained=False keeps the KonIQ head size (one output) and stops the download;
        # pretrained_model_path loads the local file with strict key matching.
        return pyiqa.create_metric("musiq", device=device, pretrained=False, pretrained_model_path=str(files[0]))
    if name == "clipiqa":
        # a file path as backbone: pyiqa's CLIP loader reads it instead of fetching RN50
        return pyiqa.create_metric("clipiqa", device=device, backbone=str(files[0]))
    if name == "clipiqa_plus":
        m = pyiqa.create_metric("clipiqa+", device=device, backbone=str(files[0]), pretrained=False)
        ctx = torch.load(files[1], map_location="cpu", weights_only=True)
        if tuple(ctx.shape) != tuple(m.net.prompt_learner.ctx.shape):
            raise ValueError(f"{files[1]}: prompt context of shape {tuple(ctx.shape)}, "
                             f"expected {tuple(m.net.prompt_learner.ctx.shape)}")
        m.net.prompt_learner.ctx.data = ctx.to(m.net.prompt_learner.ctx)
        return m
    raise ValueError(f"unknown pyiqa metric {name!r}; allowed: {', '.join(PYIQA_METRICS)}")


@dataclass
class ImageScorer:
    """Scores RGB frames with one pyiqa metric, ``batch_size`` frames per forward pass."""

    name: str
    metric: object
    device: str = "cpu"
    batch_size: int = 8
    max_side: int | None = None

    @classmethod
    def load(cls, name: str, device: str = "cpu", batch_size: int = 8, max_side: int | None = None) -> "ImageScorer":
        return cls(name, build_metric(name, device), device, batch_size, max_side)

    def _prep(self, img: np.ndarray) -> np.ndarray:
        if self.max_side and max(img.shape[:2]) > self.max_side:
            h, w = img.shape[:2]
            return resize_height(img, max(1, round(h * self.max_side / max(h, w))))
        return img

    def __call__(self, images: list[np.ndarray] | np.ndarray) -> list[float]:
        """One score per image; images of one batch must share a size (frames of one clip do)."""
        import torch

        out: list[float] = []
        imgs = [self._prep(np.asarray(i)) for i in images]
        with torch.inference_mode():
            for s in range(0, len(imgs), self.batch_size):
                chunk = np.stack(imgs[s:s + self.batch_size])
                x = torch.from_numpy(chunk).permute(0, 3, 1, 2).float().div_(255.0).to(self.device)
                out += [float(v) for v in self.metric(x).reshape(-1).cpu()]
        return out
