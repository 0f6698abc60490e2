"""score: quality scores of each clip's ``hr.mp4`` into ``meta["scores"]`` (SPEC §3.4).

Runs as a Ray actor pool: each actor loads the model metrics once (``setup``). Every
score of every clip is kept, including clips a later stage rejects. The metrics come from
``metrics``, or from a filter profile's ``score`` section (``profile: offline``), or
default to the weight-free ones. Model weights are only read from disk
(``datakit models`` shows where they are looked for); a missing file fails the stage's
:meth:`Score.preflight` before any work starts, and ``setup`` with the same message.

Resources: weight-free metrics need CPU only; for MUSIQ / CLIP-IQA / DOVER / Q-Align on
GPU set ``device: cuda`` and ``num_gpus`` (fractions share a GPU between actors, e.g. 0.25;
one-align in float16 needs about 17 GB), and size ``concurrency`` (actors) and
``batch_size`` (clips per call; DOVER and Q-Align run them in one forward pass).

Sources below the clip rate: when the record's source runs slower than the clip (a 10 fps
source cut into 24 fps clips repeats frames), ``frozen`` and ``motion`` are measured on
the frames that show a new source frame (``meta["scoring"]["source_frames"]`` says how
many), so resampling is never mistaken for a freeze.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .. import media
from ..records import Record
from .base import Stage, StageConfig


class ScoreConfig(StageConfig):
    stage: Literal["score"] = "score"
    metrics: list[str] | None = Field(
        None, description="metrics to compute (datakit.scoring.METRICS); default: the profile's, else weight-free")
    profile: str | None = Field(None, description="take metrics and frames from this filter profile")
    frames: int | None = Field(None, ge=1, description="frames sampled per clip for per-frame metrics (default 4)")
    member: str = Field("hr.mp4", description="the media member to score")
    device: str = Field("auto", description="torch device for model metrics: auto (cuda if present), cpu, cuda[:N]")
    iqa_batch: int = Field(8, ge=1, description="frames per MUSIQ / CLIP-IQA forward pass")
    iqa_max_side: int | None = Field(None, ge=32, description="downscale frames for MUSIQ / CLIP-IQA to this long side")
    dover_variant: Literal["dover", "dover_plus_plus", "dover_mobile"] = "dover"
    dover_weights: str | None = Field(None, description="DOVER weight file (default: the models directory)")
    dover_seed: int = Field(0, description="seed of DOVER's random fragment and frame offsets")
    dover_antialias: bool = Field(False, description="antialias DOVER's aesthetic resize (released code: no)")
    qalign_model: str = Field("q-future/one-align", description="Q-Align model directory, or hub id looked up on "
                              "disk ($DATAKIT_MODELS, HF cache): one-align, or a transformers-native VLM")
    qalign_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Q-Align weights: auto = float16 on GPU (as the official scorer), float32 on CPU")
    qalign_batch: int = Field(8, ge=1, description="frames (image mode) or clips (video mode) per Q-Align pass")

    @model_validator(mode="after")
    def _resolve(self):
        from ..scoring import WEIGHT_FREE, check_metrics
        from ..scoring import profiles

        if self.metrics is None:
            if self.profile is not None:
                prof = profiles.load(self.profile)
                self.metrics = list(prof.score.metrics)
                if self.frames is None:
                    self.frames = prof.score.frames
            else:
                self.metrics = list(WEIGHT_FREE)
        self.metrics = check_metrics(self.metrics)
        if self.frames is None:
            self.frames = 4
        return self


class Score(Stage):
    name = "score"
    requires = ("extract",)
    uses_model = True
    Config = ScoreConfig

    @staticmethod
    def _device(cfg: ScoreConfig) -> str:
        from ..scoring import METRICS

        if cfg.device != "auto":
            return cfg.device
        if not any(METRICS[m].needs_weights for m in cfg.metrics):
            return "cpu"                      # weight-free metrics: do not import torch at all
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"

    @classmethod
    def preflight(cls, cfg: ScoreConfig) -> list[str]:
        """Problems that would make every clip fail (missing weight files), checked up front."""
        from ..scoring.weights import missing

        return missing(cfg.metrics, cfg.dover_variant, cfg.dover_weights, cfg.qalign_model)

    def setup(self) -> None:
        from ..scoring import ClipScorer, ScoreOptions

        cfg: ScoreConfig = self.config
        self.scorer = ClipScorer(cfg.metrics, ScoreOptions(
            frames=cfg.frames, device=self._device(cfg), batch_size=cfg.iqa_batch, max_side=cfg.iqa_max_side,
            dover_variant=cfg.dover_variant, dover_weights=cfg.dover_weights, dover_seed=cfg.dover_seed,
            dover_antialias=cfg.dover_antialias, qalign_model=cfg.qalign_model, qalign_dtype=cfg.qalign_dtype,
            qalign_batch=cfg.qalign_batch))

    @staticmethod
    def source_frames(meta: dict, num_frames: int):
        """The clip frames showing a new source frame, when the source is slower than the clip."""
        from ..scoring import SourceFrames
        from ..split import source_frame_numbers

        src, fps = meta.get("source") or {}, meta.get("fps")
        if not fps or not src.get("fps") or src["fps"] >= fps * 0.999 or "start_time" not in meta:
            return None
        nums = source_frame_numbers(num_frames, meta["start_time"], fps, src.get("start_time", 0.0), src["fps"])
        return SourceFrames.from_numbers(nums, fps, src["fps"])

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: ScoreConfig = self.config
        live, pending, distinct = [], [], []
        for r in records:
            if cfg.member not in r.media:
                r.rejected(self.name, "no_media", f"record has no {cfg.member} to score")
                continue
            frames = media.decode(r.media[cfg.member])
            source = self.source_frames(r.meta, len(frames))
            # the decoded clip is dropped after this
            pending.append(self.scorer.prepare(frames, r.meta.get("fps"), source))
            distinct.append(None if source is None else {"source_frames": len(source.index),
                                                         "source_fps": round(source.source_fps, 4)})
            live.append(r)
            del frames
        info = self.scorer.info()
        for r, scores, extra in zip(live, self.scorer.finish(pending), distinct):
            r.meta.setdefault("scores", {}).update(scores)
            r.meta["scoring"] = dict(info, **extra) if extra else info
        return records
