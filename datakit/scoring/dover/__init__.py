"""DOVER video quality scorer: datakit's implementation, loading the released weights unchanged.

Variants and their weight files (plain state dicts, loaded with ``strict=True``):

- ``dover``: ``DOVER.pth``, Swin-T over fragments + ConvNeXt-T over the resized frame;
- ``dover_plus_plus``: ``DOVER_plus_plus.pth``, the same architecture (trained on DIVIDE-MaxWell);
- ``dover_mobile``: ``DOVER-Mobile.pth``, ConvNeXt-V2 femto in both branches.

Scores (``fuse``): each branch's raw score is standardised with the constants of the
released evaluator and squashed by a logistic to [0, 1]; the overall score is the logistic
of 0.6104 × technical + 0.3896 × aesthetic (standardised). The released evaluator uses
these constants whatever the variant, and so does datakit.

DOVER's weights are under a non-commercial licence (S-Lab License 1.0).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..weights import DOVER_FILES, dover_file
from .views import ViewParams, make_views

VARIANTS = {"dover": "dover", "dover_plus_plus": "dover", "dover_mobile": "mobile"}  # variant -> architecture
OUTPUTS = ("dover", "dover_technical", "dover_aesthetic")


def fuse(technical: float, aesthetic: float) -> dict[str, float]:
    """Raw branch scores -> ``dover`` (overall), ``dover_technical``, ``dover_aesthetic``, all in [0, 1]."""
    t = (technical - 0.1107) / 0.07355
    a = (aesthetic + 0.08285) / 0.03774
    sig = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    return {"dover": sig(0.6104 * t + 0.3896 * a), "dover_technical": sig(t), "dover_aesthetic": sig(a)}


def build(variant: str = "dover"):
    """The randomly initialised network of a variant (what the released weights load into)."""
    from .arch import DOVER

    if variant not in VARIANTS:
        raise ValueError(f"unknown DOVER variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    return DOVER(VARIANTS[variant])


def load_state_dict(path: str | os.PathLike) -> dict:
    """A released checkpoint as a state dict (tensors only; a ``state_dict`` wrapper is unwrapped)."""
    import torch

    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    return sd


def load(variant: str = "dover", weights: str | os.PathLike | None = None, device: str = "cpu"):
    """Build a variant and load its weights with ``strict=True`` (``weights``: a file, else the
    default search, see :mod:`datakit.scoring.weights`). Raises ``MissingWeights`` when absent."""
    path = dover_file(variant, weights).require()
    model = build(variant)
    model.load_state_dict(load_state_dict(path), strict=True)
    return model.eval().to(device), path


@dataclass
class DoverScorer:
    """Scores clips with a loaded DOVER. ``seed`` fixes the random fragment and frame offsets."""

    model: object
    device: str = "cpu"
    params: ViewParams = ViewParams()
    seed: int = 0
    weights_path: str | None = None
    variant: str = "dover"

    @classmethod
    def from_weights(cls, variant: str = "dover", weights: str | None = None, device: str = "cpu",
                     params: ViewParams = ViewParams(), seed: int = 0) -> "DoverScorer":
        model, path = load(variant, weights, device)
        return cls(model, device, params, seed, str(path), variant)

    def views(self, frames: np.ndarray):
        return make_views(frames, self.params, self.seed)

    def raw(self, views: list) -> list[tuple[float, float]]:
        """(technical, aesthetic) raw scores for a batch of ``views()`` results, one forward pass."""
        import torch

        tech = torch.cat([v[0] for v in views]).to(self.device)
        aes = torch.cat([v[1] for v in views]).to(self.device)
        with torch.inference_mode():
            t, a = self.model(tech, aes)
        return list(zip(t.float().cpu().tolist(), a.float().cpu().tolist()))

    def score_many(self, clips: list[np.ndarray]) -> list[dict[str, float]]:
        return [fuse(t, a) for t, a in self.raw([self.views(f) for f in clips])]

    def score(self, frames: np.ndarray) -> dict[str, float]:
        return self.score_many([frames])[0]


__all__ = ["DOVER_FILES", "DoverScorer", "OUTPUTS", "VARIANTS", "ViewParams", "build", "fuse", "load"]
