"""The segmenter interface: frames in, instances (label, score, mask, box) out.

Two backends implement it: Mask2Former (``mask2former.py``, weights from a local
directory) and an OpenCV backend that needs no weights (``opencv.py``: HOG people
detector and Haar cascades for boxes, GrabCut inside each box for the mask).
``backends.make_segmenter(config)`` builds either from its pydantic config; the config is
also what a pipeline spec holds under a refs stage's ``segmenter:`` key.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Annotated, Literal, Sequence, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

#: COCO's animal classes; ``animals`` in a ``classes`` list expands to those a checkpoint has.
ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")


@dataclass
class Instance:
    """One segmented object in one frame. ``box`` is (x0, y0, x1, y1), end exclusive, tight on the mask."""

    label: str
    score: float
    mask: np.ndarray                       # bool (H, W)
    box: tuple[int, int, int, int]
    detector: str = ""                     # what found it: mask2former, hog, face, ...
    extra: dict = field(default_factory=dict)

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    def to_dict(self) -> dict:
        d = {"label": self.label, "score": round(float(self.score), 4), "box": [int(v) for v in self.box],
             "area": self.area, "detector": self.detector}
        d.update(self.extra)
        return d


def box_of_mask(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight (x0, y0, x1, y1) box of a boolean mask, end exclusive; None if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter / union) if union else 0.0


def instance_from_mask(mask: np.ndarray, label: str, score: float, detector: str, **extra) -> Instance | None:
    mask = np.asarray(mask, dtype=bool)
    box = box_of_mask(mask)
    if box is None:
        return None
    return Instance(label=label, score=float(score), mask=mask, box=box, detector=detector, extra=extra)


class Segmenter(ABC):
    """Segments batches of RGB uint8 frames (each ``(H, W, 3)``, sizes may differ)."""

    backend: str

    @abstractmethod
    def segment(self, frames: Sequence[np.ndarray]) -> list[list[Instance]]:
        """One list of instances per frame, of the configured classes only."""

    @abstractmethod
    def describe(self) -> dict:
        """Provenance recorded in the sample json: backend, weights, classes, thresholds."""


# ---------------------------------------------------------------- configs

class _SegConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    classes: list[str] = Field(
        ["person"], min_length=1,
        description="classes to keep; 'animals' adds the animal classes the backend knows")

    @field_validator("classes")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [c.strip().lower() for c in v]


class OpenCVConfig(_SegConfig):
    """Offline backend: boxes from OpenCV 4's HOG people detector and Haar cascades, masks from GrabCut.

    Classes: ``person`` (HOG full bodies; frontal faces grown to head and shoulders)
    and ``cat`` (cat faces), so ``animals`` means cats here.
    """

    backend: Literal["opencv"] = "opencv"
    detectors: list[Literal["hog", "face", "upperbody"]] = Field(
        ["hog", "face"], min_length=1, description="person detectors to run")
    hog_threshold: float = Field(1.5, description="minimum HOG SVM score of a person box")
    face_neighbors: int = Field(4, ge=1, description="Haar minNeighbors (higher: fewer, surer faces)")
    min_size: int = Field(24, ge=8, description="smallest face/box side in pixels")
    grabcut_iters: int = Field(3, ge=1, le=20)
    work_side: int = Field(256, ge=64, description="GrabCut runs on the box region scaled to this longest side")
    nms_iou: float = Field(0.3, ge=0, le=1, description="boxes overlapping a surer one more than this are dropped")
    min_area: float | None = Field(
        None, ge=0, le=1, description="smallest person to look for, as a fraction of the frame's area: the HOG "
        "detector runs on a copy scaled so a person that small fills its window. Default: the stage's min_area "
        "(the refs verb's --min-area), else 0.01")
    max_upscale: float = Field(2.0, ge=1, description="largest enlargement of the frame for the HOG detector (cost)")
    hog_step: float = Field(1.03, gt=1, le=1.5, description="HOG image-pyramid step (1.05 is faster, misses more "
                            "people near the smallest size)")


class Mask2FormerConfig(_SegConfig):
    """Mask2Former (``Mask2FormerForUniversalSegmentation``) from a local directory.

    ``model`` is a directory holding ``config.json``, the weights and the image
    processor's ``preprocessor_config.json``, or a hub id such as
    ``facebook/mask2former-swin-large-coco-panoptic`` found on disk: first under
    ``$DATAKIT_MODELS/<id>``, then in the Hugging Face cache. Nothing is downloaded.
    """

    backend: Literal["mask2former"] = "mask2former"
    model: str = Field("facebook/mask2former-swin-large-coco-panoptic",
                       description="local directory, or hub id looked up on disk only")
    mode: Literal["panoptic", "instance"] = Field(
        "panoptic", description="post-processing: panoptic (non-overlapping segments) or instance")
    threshold: float = Field(0.5, ge=0, le=1, description="minimum segment score")
    mask_threshold: float = Field(0.5, ge=0, le=1)
    overlap_mask_area_threshold: float = Field(0.8, ge=0, le=1)
    device: str = Field("auto", description="auto (cuda when available), cpu, cuda, cuda:1, ...")
    half: bool = Field(False, description="float16 weights on GPU")
    batch_size: int = Field(8, ge=1, description="frames per forward pass")
    shortest_edge: int | None = Field(
        None, ge=32, description="resize frames to this shortest edge (default: the checkpoint's, 800 for COCO)")


SegmenterConfig = Annotated[Union[Mask2FormerConfig, OpenCVConfig], Field(discriminator="backend")]
