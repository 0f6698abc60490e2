"""Clip quality scoring: weight-free signals, pyiqa MUSIQ / CLIP-IQA, DOVER and Q-Align.

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
motion          motion, motion_peak                                         none
piqe            piqe                                                        none
niqe            niqe                                                        shipped
musiq           musiq                                                       pyiqa
clipiqa         clipiqa                                                     pyiqa
clipiqa_plus    clipiqa_plus                                                pyiqa
dover           dover, dover_technical, dover_aesthetic                     DOVER
qalign          qalign                                                      Q-Align
qalign_image    qalign_image                                                Q-Align
==============  ==========================================================  ========

Per-frame metrics look at ``frames`` frames spread evenly over the clip and average;
``black`` looks at every frame; ``dover`` samples as DOVER does; ``qalign`` shows the
model one frame per second as Q-Align's video scorer does (it needs the clip's ``fps``).

``frozen`` and ``motion`` measure the *source*: when a clip was resampled from a source
below the clip rate (a 10 fps source in a 24 fps clip repeats frames), they look only at
the clip frames that show a new source frame (:class:`SourceFrames`, from the record's
timing), and motion is still given per clip frame.
:class:`ClipScorer` loads what the chosen metrics need once and scores clips; nothing in
this package downloads anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from . import classical, signals
from .frames import sample_indices
from .weights import QALIGN_MODEL, MissingWeights


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
    Metric("motion", {"motion": "mean optical flow, % of frame height per clip frame",
                      "motion_peak": "99th percentile of optical flow, % of frame height per clip frame "
                                     "(moving subjects in a static shot)"}, "none"),
    Metric("piqe", {"piqe": "PIQE, 0..100 (lower = better)"}, "none"),
    Metric("niqe", {"niqe": "NIQE (lower = better)"}, "shipped"),
    Metric("musiq", {"musiq": "MUSIQ KonIQ, ~0..100 (higher = better)"}, "pyiqa"),
    Metric("clipiqa", {"clipiqa": "CLIP-IQA, 0..1 (higher = better)"}, "pyiqa"),
    Metric("clipiqa_plus", {"clipiqa_plus": "CLIP-IQA+, 0..1 (higher = better)"}, "pyiqa"),
    Metric("dover", {"dover": "DOVER overall, 0..1 (higher = better)",
                     "dover_technical": "DOVER technical branch, 0..1",
                     "dover_aesthetic": "DOVER aesthetic branch, 0..1"}, "DOVER"),
    Metric("qalign", {"qalign": "Q-Align video quality, 1..5 (higher = better), one frame per second"}, "Q-Align"),
    Metric("qalign_image", {"qalign_image": "Q-Align image quality of the sampled frames, mean, 1..5"}, "Q-Align"),
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
    qalign_model: str | None = None  # Q-Align directory or hub id (default: weights.QALIGN_MODEL)
    qalign_dtype: str = "auto"       # auto: float16 on GPU, float32 on CPU
    qalign_batch: int = 8            # frames (or clips) per Q-Align forward pass


@dataclass(frozen=True)
class SourceFrames:
    """The clip frames that show a new source frame, and the clip frames between them.

    A clip sampled above its source's rate repeats source frames; ``frozen`` and ``motion``
    then look at ``index`` only, and scale motion by ``gaps`` (clip frames from each listed
    frame to the next) so it stays per clip frame. Built by the score stage from the
    record's timing (:func:`datakit.split.source_frame_numbers`).
    """

    index: tuple[int, ...]
    gaps: tuple[float, ...]
    source_fps: float

    @classmethod
    def from_numbers(cls, numbers, fps: float, source_fps: float) -> "SourceFrames":
        from ..split import distinct_frames

        idx = distinct_frames(numbers)
        nums = np.asarray(numbers)[idx]
        return cls(tuple(int(i) for i in idx), tuple(float(g) * fps / source_fps for g in np.diff(nums)),
                   float(source_fps))


@dataclass
class _Pending:
    scores: dict[str, float]
    sampled: np.ndarray | None = None
    views: tuple | None = None
    video: list | None = None          # frames shown to Q-Align's video mode


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
        self.qalign = None
        self.models: dict[str, str] = {}
        if any(m in ("qalign", "qalign_image") for m in self.metrics):
            from . import qalign

            self.qalign = qalign.load(o.qalign_model or QALIGN_MODEL, o.device, o.qalign_dtype, o.qalign_batch)
            d = self.qalign.describe()
            for m in ("qalign", "qalign_image"):
                if m in self.metrics:
                    self.models[m] = f"{d['model_id']} ({d['backend']}, {d['dtype']})"
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

    def _signals(self, frames: np.ndarray, source: SourceFrames | None = None) -> dict[str, float]:
        n = self.options.frames
        s: dict[str, float | None] = {}
        distinct = frames if source is None else frames[list(source.index)]
        gaps = None if source is None else source.gaps
        for name in self.metrics:
            if name == "sharpness":
                s["sharpness"] = signals.sharpness(frames, signals.SharpnessParams(frames=n))
            elif name == "exposure":
                s.update(signals.exposure(frames, signals.ExposureParams(frames=n)))
            elif name == "black":
                s["black_frames"] = signals.black_frames(frames)
            elif name == "frozen":
                s["frozen_frames"] = signals.frozen_frames(distinct)
            elif name == "motion":
                s.update(signals.motion(distinct, gaps=gaps))
            elif name == "piqe":
                s["piqe"] = classical.piqe(frames, classical.PiqeParams(frames=n))
            elif name == "niqe":
                s["niqe"] = classical.niqe(frames, classical.NiqeParams(frames=n))
        return {k: float(v) for k, v in s.items() if v is not None and np.isfinite(v)}

    def prepare(self, frames: np.ndarray, fps: float | None = None, source: SourceFrames | None = None) -> _Pending:
        """Everything that needs the whole clip: weight-free scores, sampled frames, DOVER views,
        Q-Align's frames. The clip itself can be dropped afterwards. ``fps`` is the clip's frame
        rate (Q-Align's video mode needs it); ``source`` marks repeated source frames."""
        p = _Pending(self._signals(frames, source))
        if self.image_scorers or "qalign_image" in self.metrics:
            p.sampled = frames[sample_indices(len(frames), self.options.frames)].copy()
        if self.dover is not None:
            p.views = self.dover.views(frames)
        if "qalign" in self.metrics:
            if not fps:
                raise ValueError("the qalign metric needs the clip's frame rate (fps)")
            from .qalign import video_frame_indices

            p.video = [frames[i].copy() for i in video_frame_indices(len(frames), fps)]
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
        if "qalign_image" in self.metrics and pending:
            flat = self.qalign.score_images([f for p in pending for f in p.sampled])
            i = 0
            for p in pending:
                p.scores["qalign_image"] = float(np.mean(flat[i:i + len(p.sampled)]))
                i += len(p.sampled)
        if "qalign" in self.metrics and pending:
            for p, v in zip(pending, self.qalign.score_videos([p.video for p in pending])):
                p.scores["qalign"] = float(v)
        return [p.scores for p in pending]

    def score_many(self, clips: Iterable[np.ndarray], fps: float | None = None) -> list[dict[str, float]]:
        """Scores of each clip; ``clips`` may be a generator (one decoded clip alive at a time)."""
        return self.finish([self.prepare(f, fps) for f in clips])

    def score(self, frames: np.ndarray, fps: float | None = None, source: SourceFrames | None = None
              ) -> dict[str, float]:
        return self.finish([self.prepare(frames, fps, source)])[0]


__all__ = ["METRICS", "SCORE_KEYS", "WEIGHT_FREE", "ClipScorer", "Metric", "MissingWeights", "ScoreOptions",
           "SourceFrames", "check_metrics"]
