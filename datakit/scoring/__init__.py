"""Clip quality scoring: weight-free signals, pyiqa MUSIQ / CLIP-IQA, and DOVER.

A *metric* is what a pipeline or ``datakit score --metrics`` names; it writes one or more
*scores* (flat ``name -> float`` entries of a record's ``meta["scores"]``), which filter
profiles (``filters/*.yaml``) test against thresholds. ``METRICS`` lists them all:

==============  ==========================================================  ========
metric          scores                                                      weights
==============  ==========================================================  ========
sharpness       sharpness                                                   none
exposure        brightness, dark_fraction, bright_fraction                  none
black           black_frames                                                none
frozen          frozen_frames                                               none
motion          motion                                                      none
piqe            piqe                                                        none
niqe            niqe                                                        shipped
musiq           musiq                                                       pyiqa
clipiqa         clipiqa                                                     pyiqa
clipiqa_plus    clipiqa_plus                                                pyiqa
dover           dover, dover_technical, dover_aesthetic                     DOVER
==============  ==========================================================  ========

Per-frame metrics look at ``frames`` frames spread evenly over the clip and average;
``black`` and ``frozen`` look at every frame; ``dover`` samples as DOVER does.
:class:`ClipScorer` loads what the chosen metrics need once and scores clips; nothing in
this package downloads anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from . import classical, signals
from .frames import sample_indices
from .weights import MissingWeights


@dataclass(frozen=True)
class Metric:
    name: str
    scores: dict[str, str]     # score key -> what it measures and which way is better
    weights: str               # "none", "shipped" (package data) or the backend whose files it needs

    @property
    def needs_weights(self) -> bool:
        return self.weights not in ("none", "shipped")


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("sharpness", {"sharpness": "variance of the Laplacian of luma (higher = sharper)"}, "none"),
    Metric("exposure", {"brightness": "mean luma, 0..1",
                        "dark_fraction": "share of crushed-black pixels (lower = better)",
                        "bright_fraction": "share of blown-out pixels (lower = better)"}, "none"),
    Metric("black", {"black_frames": "share of black frames (lower = better)"}, "none"),
    Metric("frozen", {"frozen_frames": "share of repeated frames (lower = better)"}, "none"),
    Metric("motion", {"motion": "mean optical flow, % of frame height per frame"}, "none"),
    Metric("piqe", {"piqe": "PIQE, 0..100 (lower = better)"}, "none"),
    Metric("niqe", {"niqe": "NIQE (lower = better)"}, "shipped"),
    Metric("musiq", {"musiq": "MUSIQ KonIQ, ~0..100 (higher = better)"}, "pyiqa"),
    Metric("clipiqa", {"clipiqa": "CLIP-IQA, 0..1 (higher = better)"}, "pyiqa"),
    Metric("clipiqa_plus", {"clipiqa_plus": "CLIP-IQA+, 0..1 (higher = better)"}, "pyiqa"),
    Metric("dover", {"dover": "DOVER overall, 0..1 (higher = better)",
                     "dover_technical": "DOVER technical branch, 0..1",
                     "dover_aesthetic": "DOVER aesthetic branch, 0..1"}, "DOVER"),
)}

WEIGHT_FREE = tuple(n for n, m in METRICS.items() if not m.needs_weights)
SCORE_KEYS: dict[str, str] = {k: m.name for m in METRICS.values() for k in m.scores}  # score -> metric


def check_metrics(names: Iterable[str]) -> list[str]:
    """Validated metric names in a stable order; raises ``ValueError`` naming the unknown ones."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; allowed: {', '.join(METRICS)}")
    return names


@dataclass
class ScoreOptions:
    frames: int = 4                  # frames sampled per clip for the per-frame metrics
    device: str = "cpu"              # torch device for the model metrics
    batch_size: int = 8              # frames per pyiqa forward pass
    max_side: int | None = None      # cap the long side of frames given to pyiqa metrics
    dover_variant: str = "dover"
    dover_weights: str | None = None  # a DOVER weight file; default: the search in weights.py
    dover_seed: int = 0              # seed of DOVER's random fragment / frame offsets
    dover_antialias: bool = False    # antialias DOVER's aesthetic resize (see dover/views.py)


@dataclass
class _Pending:
    scores: dict[str, float]
    sampled: np.ndarray | None = None
    views: tuple | None = None


@dataclass
class ClipScorer:
    """Loads the backends the metrics need once, then scores clips.

    Construction raises :class:`MissingWeights` when a model metric's files are absent.
    """

    metrics: list[str]
    options: ScoreOptions = field(default_factory=ScoreOptions)

    def __post_init__(self):
        self.metrics = check_metrics(self.metrics)
        o = self.options
        self.image_scorers = {}
        self.dover = None
        self.models: dict[str, str] = {}
        for name in self.metrics:
            if name in ("musiq", "clipiqa", "clipiqa_plus"):
                from .iqa import ImageScorer

                self.image_scorers[name] = ImageScorer.load(name, o.device, o.batch_size, o.max_side)
                from .weights import files_for

                self.models[name] = ", ".join(wf.find().name for wf in files_for(name))
            elif name == "dover":
                from .dover import DoverScorer, ViewParams

                self.dover = DoverScorer.from_weights(o.dover_variant, o.dover_weights, o.device,
                                                      ViewParams(aesthetic_antialias=o.dover_antialias), o.dover_seed)
                self.models[name] = f"{o.dover_variant}: {self.dover.weights_path.rsplit('/', 1)[-1]}"

    def info(self) -> dict:
        """What produced the scores (for the sample json)."""
        d = {"metrics": list(self.metrics), "frames": self.options.frames}
        if self.models:
            d["models"] = dict(self.models)
        if self.dover is not None:
            d["dover_seed"] = self.options.dover_seed
        return d

    def _signals(self, frames: np.ndarray) -> dict[str, float]:
        n = self.options.frames
        s: dict[str, float | None] = {}
        for name in self.metrics:
            if name == "sharpness":
                s["sharpness"] = signals.sharpness(frames, signals.SharpnessParams(frames=n))
            elif name == "exposure":
                s.update(signals.exposure(frames, signals.ExposureParams(frames=n)))
            elif name == "black":
                s["black_frames"] = signals.black_frames(frames)
            elif name == "frozen":
                s["frozen_frames"] = signals.frozen_frames(frames)
            elif name == "motion":
                s["motion"] = signals.motion(frames)
            elif name == "piqe":
                s["piqe"] = classical.piqe(frames, classical.PiqeParams(frames=n))
            elif name == "niqe":
                s["niqe"] = classical.niqe(frames, classical.NiqeParams(frames=n))
        return {k: float(v) for k, v in s.items() if v is not None and np.isfinite(v)}

    def prepare(self, frames: np.ndarray) -> _Pending:
        """Everything that needs the whole clip: weight-free scores, sampled frames, DOVER views.
        The clip itself can be dropped afterwards."""
        p = _Pending(self._signals(frames))
        if self.image_scorers:
            p.sampled = frames[sample_indices(len(frames), self.options.frames)].copy()
        if self.dover is not None:
            p.views = self.dover.views(frames)
        return p

    def finish(self, pending: list[_Pending]) -> list[dict[str, float]]:
        """Run the model metrics over prepared clips (DOVER batched across clips)."""
        for name, scorer in self.image_scorers.items():
            for p in pending:
                p.scores[name] = float(np.mean(scorer(p.sampled)))
        if self.dover is not None and pending:
            from .dover import fuse

            for p, (t, a) in zip(pending, self.dover.raw([p.views for p in pending])):
                p.scores.update(fuse(t, a))
        return [p.scores for p in pending]

    def score_many(self, clips: Iterable[np.ndarray]) -> list[dict[str, float]]:
        """Scores of each clip; ``clips`` may be a generator (one decoded clip alive at a time)."""
        return self.finish([self.prepare(f) for f in clips])

    def score(self, frames: np.ndarray) -> dict[str, float]:
        return self.score_many([frames])[0]


__all__ = ["METRICS", "SCORE_KEYS", "WEIGHT_FREE", "ClipScorer", "Metric", "MissingWeights", "ScoreOptions",
           "check_metrics"]
