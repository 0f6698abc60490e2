"""Training configs: one YAML per run (``pipelines/train_*.yaml``), validated on load.

``--set key=value`` edits the YAML tree before validation; list items are addressed by
their index (``--set stages.0.steps=200``) and every other value by its path
(``--set optim.lr=5e-5``). Values are parsed as YAML.

The stage schedule (paper §3.4, SPEC §7) is a list of stages run in order; each names its
length in optimizer steps, the clip length in frames and the task mixture.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import yamlconfig

TASKS = ("t2v", "mi2v", "edit")


class TrainConfigError(ValueError):
    """A training config is invalid; the message names the field and what is allowed."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageConfig(_Model):
    name: str
    steps: int = Field(ge=1, description="optimizer steps in this stage")
    frames: int = Field(ge=1, description="frames per training clip (4k+1 for Wan's VAE)")
    tasks: dict[Literal["t2v", "mi2v", "edit"], float] = Field(
        min_length=1, description="task -> sampling probability (normalised)")

    @field_validator("tasks")
    @classmethod
    def _positive(cls, v):
        if any(p < 0 for p in v.values()) or sum(v.values()) <= 0:
            raise ValueError("probabilities must be >= 0 with a positive sum")
        return v

    @field_validator("frames")
    @classmethod
    def _four_k_plus_one(cls, v):
        if (v - 1) % 4:
            raise ValueError(f"{v} is not 4k+1 (Wan's VAE keeps 1 + (T-1)//4 latent frames)")
        return v


class RopeConfig(_Model):
    """First temporal RoPE index of each token kind (A.5.7: 0-20 target, 20-30 images, 30-50 video)."""
    target: int = Field(0, ge=0)
    images: int = Field(20, ge=0)
    video: int = Field(30, ge=0)

    @model_validator(mode="after")
    def _order(self):
        if not self.target < self.images < self.video:
            raise ValueError("expected target < images < video")
        return self


class ModelConfig(_Model):
    rope: RopeConfig = RopeConfig()
    gradient_checkpointing: Literal["auto", True, False] = Field(
        "auto", description="recompute block activations in backward (auto: on GPU only)")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="bf16: bf16 autocast over float32 master weights (on any device); "
                            "auto: bf16 on GPU, fp32 on CPU")
    vae_tiling: Literal["auto", True, False] = Field(
        "auto", description="VAE encode over overlapping tiles (diffusers' own tiling), so 1080p x 77-frame HR "
                            "fits; frames no larger than one tile are encoded as without (auto: on GPU only)")
    vae_tile: int = Field(256, ge=16, description="VAE tile side in pixels (with vae_tiling)")
    vae_tile_stride: int = Field(192, ge=8, description="pixels between VAE tile origins (overlap = tile - stride)")

    @model_validator(mode="after")
    def _tiles(self):
        from ..sdedit.vae import VaeTiling

        VaeTiling(self.vae_tile, self.vae_tile_stride)        # raises with the rule that is broken
        return self

    def tiling(self, device_type: str):
        """The :class:`~datakit.sdedit.vae.VaeTiling` for a device type ("cuda", "cpu"), or None."""
        from ..sdedit.vae import VaeTiling

        on = device_type == "cuda" if self.vae_tiling == "auto" else bool(self.vae_tiling)
        return VaeTiling(self.vae_tile, self.vae_tile_stride) if on else None


class OptimConfig(_Model):
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    eps: float = Field(1e-8, gt=0)
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0 to lr")
    grad_clip: float | None = Field(1.0, gt=0, description="max global grad norm; null: no clipping")
    grad_accum: int = Field(1, ge=1, description="micro-batches (of one clip) per optimizer step and worker")


class ObjectiveConfig(_Model):
    null_prompt_prob: float = Field(0.1, ge=0, le=1, description="prompt replaced by '' (§4.1.1)")
    noise_aug: tuple[int, int] = Field((200, 600), description="LR noise-augmentation timestep range, of 1000")
    timestep_sampling: Literal["uniform", "logit_normal"] = "uniform"
    timestep_shift: float = Field(1.0, gt=0, description="sigma -> shift*sigma / (1 + (shift-1)*sigma)")
    ref_drop_prob: float = Field(0.0, ge=0, le=1, description="drop a sample's references (extra null-ref data)")

    @field_validator("noise_aug")
    @classmethod
    def _range(cls, v):
        if not 0 <= v[0] <= v[1] <= 1000:
            raise ValueError("expected 0 <= low <= high <= 1000")
        return v


class AugmentConfig(_Model):
    """Reference augmentation (Table 3) for ID images, and the edit task's start-frame shift."""
    enabled: bool = True
    brightness: tuple[float, float] = (0.9, 1.1)
    hflip_p: float = Field(0.5, ge=0, le=1)
    shear_frac: float = Field(0.05, ge=0, lt=1, description=(
        "Table 3 shear in pixels, as a fraction of the image side: the x shear offsets the top edge by up "
        "to shear_frac*w against the bottom edge, the y shear the left edge by up to shear_frac*h against "
        "the right; converted to albumentations' degrees per image from its h and w"))
    rotate_deg: float = Field(20.0, ge=0)
    crop_scale: tuple[float, float] = (0.67, 1.0)
    crop_p: float = Field(0.5, ge=0, le=1)
    edit_shift: int = Field(4, ge=0, description="max shift (frames) of the edit reference video's start")


class LatentCacheConfig(_Model):
    """Train from VAE latents and text embeddings stored by ``datakit cache-latents`` (:mod:`datakit.train.cache`)."""
    use: bool = Field(False, description="read HR/LR latents and caption embeddings from the cache instead of "
                                         "encoding pixels every step (references are still encoded per step)")
    window_stride: int | None = Field(None, ge=1, description="frames between the starts of cached windows of a "
                                                              "clip (default: the window length - 1)")
    dtype: Literal["bfloat16", "float32"] = Field("bfloat16", description="stored precision of the cache")


class DataConfig(_Model):
    roots: list[str] = Field(min_length=1, description="dataset roots (datakit run outputs); tasks from manifests")
    crop: tuple[int, int] | None = Field(None, description="random HR crop (height, width) in pixels; "
                                                           "null: the whole frame (cut to a multiple of 16)")
    scale_hint: int = Field(4, ge=1, description="LR -> HR factor used when a sample json lacks sizes")
    workers: int = Field(2, ge=0, description="loader processes per training worker (0: in-process)")
    prefetch: int = Field(2, ge=1, description="items prefetched per loader process")
    max_images: int | None = Field(None, ge=1, description="ID images per sample (default: all the rope range allows)")
    latent_cache: LatentCacheConfig = LatentCacheConfig()

    @model_validator(mode="after")
    def _cache_needs_whole_frames(self):
        if self.latent_cache.use and self.crop is not None:
            raise ValueError("latent_cache.use needs crop: null (the cache holds whole frames, cut to a multiple "
                             "of 16 about the centre)")
        return self

    @field_validator("roots", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


class CheckpointConfig(_Model):
    every: int = Field(500, ge=1, description="optimizer steps between checkpoints (and one at the end)")
    keep: int = Field(3, ge=1, description="most recent checkpoints kept")
    resume: str = Field("auto", description="auto (latest in OUTPUT/checkpoints), never, or a checkpoint dir")


class DistributedConfig(_Model):
    workers: int = Field(1, ge=1, description="training workers; > 1 runs Ray Train's TorchTrainer")
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="with > 1 workers: ddp replicates the model on every worker; fsdp (PyTorch FSDP2, "
                           "fully_shard per transformer block and the rest) shards parameters, gradients and "
                           "optimizer state across them, for models that do not fit one device; checkpoints "
                           "are then sharded too")
    use_gpu: Literal["auto", True, False] = "auto"
    backend: Literal["auto", "nccl", "gloo"] = Field("auto", description="auto: nccl on GPU, gloo on CPU")
    address: str | None = Field(None, description="Ray cluster address (auto or HOST:PORT); default: local Ray")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local Ray")
    cpus_per_worker: float = Field(1.0, gt=0)


class SamplerConfig(_Model):
    """The diffusers scheduler ``upscale`` samples with (see :mod:`datakit.train.sampler` for why the default).

    The paper uses PNDM (§4.1.1), which has no flow-matching mode; ``base`` is the base model's
    own flow scheduler (Wan 2.1: ``UniPCMultistepScheduler`` with flow sigmas).
    """
    scheduler: str = Field("base", description="a diffusers scheduler class name, or base (the base model's)")
    settings: dict[str, float | int | bool | str] = Field(
        default_factory=dict, description="constructor settings of that class (checked against it); the flow "
                                          "settings and the shift are set by datakit")


class InferenceConfig(_Model):
    """Defaults of ``datakit upscale`` (A.3, §4.1.1, A.5.8); stored in every checkpoint."""
    steps: int = Field(50, ge=1)
    shift: float = Field(1.0, gt=0)
    sampler: SamplerConfig = SamplerConfig()
    s_txt: float = 3.0
    s_ref: float = 1.0
    n_ref: int = Field(15, ge=0, description="reference guidance only for the first n_ref steps")
    noise_aug_ref: int = Field(600, ge=0, le=1000, description="LR noise-aug timestep with references")
    noise_aug_plain: int = Field(200, ge=0, le=1000, description="LR noise-aug timestep without references")
    scale: int = Field(4, ge=1, description="output size = LR size x scale")


class TrainConfig(_Model):
    name: str
    base_model: str = Field(description="local diffusers Wan 2.1 T2V directory the model starts from")
    output: str = Field(description="checkpoints, metrics.jsonl and config.json go here")
    seed: int = 0
    data: DataConfig
    stages: list[StageConfig] = Field(min_length=1)
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    augment: AugmentConfig = AugmentConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    distributed: DistributedConfig = DistributedConfig()
    inference: InferenceConfig = InferenceConfig()
    log_every: int = Field(10, ge=1)

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def stage_at(self, step: int) -> tuple[int, StageConfig]:
        """(index, stage) of optimizer step ``step`` (0-based); past the end: the last stage."""
        end = 0
        for i, s in enumerate(self.stages):
            end += s.steps
            if step < end:
                return i, s
        return len(self.stages) - 1, self.stages[-1]

    def stage_start(self, index: int) -> int:
        return sum(s.steps for s in self.stages[:index])

    def config_hash(self) -> str:
        d = self.model_dump(mode="json", exclude={"output", "distributed", "checkpoint", "log_every"})
        d["data"].pop("workers", None)
        d["data"].pop("prefetch", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def apply_override(tree: dict, assignment: str) -> None:
    """Apply one ``key=value`` (value parsed as YAML); integers index lists."""
    parts, value = yamlconfig.split_assignment(assignment, TrainConfigError)
    node = tree
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise TrainConfigError(f"--set {assignment!r}: {p!r} is not an index of a {len(node)}-item list")
            if last:
                node[int(p)] = value
            else:
                node = node[int(p)]
            continue
        if not isinstance(node, dict):
            raise TrainConfigError(f"--set {assignment!r}: {parts[i - 1]!r} is not a section")
        if last:
            node[p] = value
        else:
            node = node.setdefault(p, {})


def parse(tree: dict, overrides: list[str] = (), source: str = "config") -> TrainConfig:
    return yamlconfig.validate(TrainConfig, tree, overrides, apply_override, source, TrainConfigError, "(config)")


def load(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    return parse(yamlconfig.load_tree(path, "training config", TrainConfigError), overrides, source=str(path))
