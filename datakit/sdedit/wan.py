"""Wan 2.1 text-to-video as an SDEdit base model, on diffusers.

Reads a local diffusers directory (``Wan2.1-T2V-1.3B-Diffusers`` / ``-14B-Diffusers``, or the
tiny one ``datakit models tiny`` writes): ``vae`` (``AutoencoderKLWan``), ``transformer``
(``WanTransformer3DModel``), ``text_encoder`` (``UMT5EncoderModel``), ``tokenizer`` and
``scheduler`` (Wan 2.1 ships ``UniPCMultistepScheduler`` with flow sigmas, shift 3.0).

Facts this module relies on (SPEC §6):

* H and W must be multiples of 16 (VAE ×8, patch ×2); frames 4k+1 (the VAE keeps
  ``1 + (T − 1) // 4`` latent frames and silently drops the rest);
* latents are normalised per channel: ``(z − latents_mean) / latents_std``;
* prompts are cleaned (``ftfy``, HTML entities, whitespace), tokenised to
  ``max_sequence_length`` (512 for Wan 2.1) and the embeddings past each prompt's length
  are zeroed, as Wan's pipelines do;
* the transformer predicts the flow velocity ``v = ε − x₀``; diffusers' schedulers step
  ``x + (σ_next − σ)·v``.

On GPU the transformer and text encoder run in bf16 and the VAE in float32 by default.
``vae_tiling`` (a :class:`~datakit.sdedit.vae.VaeTiling`) tiles VAE passes for large frames.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from .. import quiet
from ..tiny import is_tiny
from . import vae as vae_tiles
from .base import ModelError, VideoDiffusionModel
from .memory import MemoryNeed

_SUBFOLDERS = ("vae", "transformer", "text_encoder", "tokenizer", "scheduler")


def clean_prompt(text: str) -> str:
    """Fix mojibake, unescape HTML entities (twice, as scraped captions need) and collapse whitespace."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return re.sub(r"\s+", " ", text).strip()


def resolve_device(device: str = "auto"):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device) -> "torch.dtype":  # noqa: F821
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def cast(module, dtype):
    """``module`` in ``dtype``, except the submodules it declares must stay float32
    (``_keep_in_fp32_modules``: Wan's RoPE, time embedder, norms, scale-shift tables), as
    ``from_pretrained(torch_dtype=...)`` does."""
    import torch

    keep = tuple(getattr(module, "_keep_in_fp32_modules", None) or ())
    for name, t in [*module.named_parameters(), *module.named_buffers()]:
        if t.is_floating_point():
            t.data = t.data.to(torch.float32 if any(k in name for k in keep) else dtype)
    return module


class WanT2V(VideoDiffusionModel):
    backend = "wan2.1"

    def __init__(self, path: str | Path, device: str = "auto", dtype: str = "auto", vae_dtype: str = "float32",
                 model_id: str | None = None, max_sequence_length: int = 512,
                 vae_tiling: vae_tiles.VaeTiling | None = None):
        """Load every component from the local diffusers directory ``path`` (never the network)."""
        quiet.model_libraries()
        import diffusers
        from diffusers import AutoencoderKLWan, WanTransformer3DModel
        from transformers import AutoTokenizer, UMT5EncoderModel

        path = Path(path)
        missing = [s for s in _SUBFOLDERS if not (path / s).is_dir()]
        if missing:
            raise ModelError(f"{path}: not a Wan diffusers directory (missing {', '.join(missing)})")
        dev = resolve_device(device)
        dt, vdt = resolve_dtype(dtype, dev), resolve_dtype(vae_dtype, dev)
        sched_cfg = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
        scheduler_class = getattr(diffusers, sched_cfg.get("_class_name") or "", None)
        if scheduler_class is None:
            raise ModelError(f"{path}/scheduler: unknown scheduler class {sched_cfg.get('_class_name')!r}")
        self._setup(
            tokenizer=AutoTokenizer.from_pretrained(path / "tokenizer", local_files_only=True),
            text_encoder=UMT5EncoderModel.from_pretrained(path / "text_encoder", dtype=dt, local_files_only=True),
            transformer=WanTransformer3DModel.from_pretrained(path / "transformer", torch_dtype=dt,
                                                              local_files_only=True),
            vae=AutoencoderKLWan.from_pretrained(path / "vae", torch_dtype=vdt, local_files_only=True),
            scheduler=scheduler_class.from_pretrained(path / "scheduler", local_files_only=True),
            device=dev, dtype=dt, vae_dtype=vdt, path=str(path), model_id=model_id or path.name,
            synthetic=is_tiny(path), max_sequence_length=max_sequence_length, vae_tiling=vae_tiling)

    @classmethod
    def from_components(cls, tokenizer, text_encoder, transformer, vae, scheduler, model_id: str,
                        device: str = "auto", dtype: str = "auto", vae_dtype: str = "float32",
                        max_sequence_length: int = 512, synthetic: bool = False,
                        vae_tiling: vae_tiles.VaeTiling | None = None) -> "WanT2V":
        """Wrap components already in memory (benchmarks, a trainer that holds them)."""
        self = cls.__new__(cls)
        dev = resolve_device(device)
        dt, vdt = resolve_dtype(dtype, dev), resolve_dtype(vae_dtype, dev)
        self._setup(tokenizer=tokenizer, text_encoder=cast(text_encoder, dt), transformer=cast(transformer, dt),
                    vae=cast(vae, vdt), scheduler=scheduler, device=dev, dtype=dt, vae_dtype=vdt, path="",
                    model_id=model_id, synthetic=synthetic, max_sequence_length=max_sequence_length,
                    vae_tiling=vae_tiling)
        return self

    def _setup(self, *, tokenizer, text_encoder, transformer, vae, scheduler, device, dtype, vae_dtype, path,
               model_id, synthetic, max_sequence_length, vae_tiling=None) -> None:
        import torch

        self.path, self.model_id, self.synthetic = path, model_id, synthetic
        self.device, self.dtype, self.vae_dtype = device, dtype, vae_dtype
        self.max_sequence_length = max_sequence_length
        self.tokenizer = tokenizer
        # device only: from_pretrained(torch_dtype=...) / cast() set dtypes and kept the float32 islands
        self.text_encoder = text_encoder.to(device).eval()
        self.transformer = transformer.to(device).eval()
        self.vae = vae.to(device).eval()
        for m in (self.text_encoder, self.transformer, self.vae):
            m.requires_grad_(False)
        self.scheduler_class = type(scheduler)
        self.scheduler_config = dict(scheduler.config)

        vcfg = self.vae.config
        self.spatial_multiple = 2 ** len(vcfg.temperal_downsample) * int(self.transformer.config.patch_size[1])
        self.temporal_stride = 2 ** sum(bool(x) for x in vcfg.temperal_downsample) * int(
            self.transformer.config.patch_size[0])
        # Wan's rotary tables cover rope_max_seq_len patches along each axis
        self.max_side = int(self.transformer.config.rope_max_seq_len) * self.spatial_multiple
        z = vcfg.z_dim
        self._lat_mean = torch.tensor(vcfg.latents_mean, dtype=torch.float32).view(1, z, 1, 1, 1).to(device)
        self._lat_std = torch.tensor(vcfg.latents_std, dtype=torch.float32).view(1, z, 1, 1, 1).to(device)
        self.set_vae_tiling(vae_tiling)

    def set_vae_tiling(self, tiling: vae_tiles.VaeTiling | None) -> None:
        vae_tiles.apply(self.vae, tiling)
        self.vae_tiling = tiling

    def describe(self) -> dict:
        d = super().describe()
        d["vae_tiling"] = self.vae_tiling.describe() if self.vae_tiling else None
        return d

    # ------------------------------------------------------------------ memory

    #: values per pixel and base channel a VAE pass holds at its peak: at full resolution the Wan
    #: VAE keeps about six activations of 4 frames (24) and 2-frame causal caches of ~10
    #: convolutions (20); the half-resolution level adds about half again. 48 is the estimate;
    #: bench/gpu_check.py reports it against the measured peak.
    VAE_VALUES_PER_CHANNEL_PIXEL = 48
    #: margin on the estimate (allocator rounding and fragmentation, kernels' workspaces)
    SAFETY = 1.25

    def memory_need(self, size: tuple[int, int], frames: int, guidance: float) -> MemoryNeed:
        """What an SDEdit call needs besides the weights, from the configs (no allocation).

        Per clip: the transformer's largest block-internal working set for each sequence
        (cond and uncond with guidance > 1): the attention phase holds about ``(8e + 6)·D``
        bytes per token (normed input, q/k/v, the float32 RoPE products, the output), the FFN
        phase ``(2e + 8)·D + 2e·F`` (float32 norms, the FFN's hidden and activated states),
        ``e`` the dtype's bytes; plus the persistent hidden states and text, the latents with
        the scheduler's history, and the clip's video in and out at base size (float32).
        Once per call: one clip through the VAE (it runs clip by clip), which scales with the
        pixels it works on at once (the frame, or one tile) and its base width.
        """
        import torch

        w, h = size
        tc, vc = self.transformer.config, self.vae.config
        e = torch.finfo(self.dtype).bits // 8
        ve = torch.finfo(self.vae_dtype).bits // 8
        d = int(tc.num_attention_heads) * int(tc.attention_head_dim)
        ffn, text_len = int(tc.ffn_dim), int(self.max_sequence_length)
        pt, ph, pw = (int(p) for p in tc.patch_size)
        scale = 2 ** len(vc.temperal_downsample)
        lf, lh, lw = 1 + (frames - 1) // (self.temporal_stride // pt), h // scale, w // scale
        tokens = (lf // pt) * (lh // ph) * (lw // pw)
        seqs = 2 if guidance > 1.0 else 1
        per_token = max((8 * e + 6) * d, (2 * e + 8) * d + 2 * e * ffn)
        transformer = seqs * (tokens * per_token + 2 * (tokens + text_len) * d * e)
        latents = 8 * int(vc.z_dim) * lf * lh * lw * 4
        text = 2 * text_len * int(tc.text_dim) * e
        video = 2 * 3 * frames * h * w * 4
        vae = (self.VAE_VALUES_PER_CHANNEL_PIXEL * int(vc.base_dim) * ve
               * vae_tiles.working_pixels(h, w, self.vae_tiling)
               + int(3 * frames * h * w * 4 * vae_tiles.tile_overhead(h, w, self.vae_tiling)))
        s = self.SAFETY
        return MemoryNeed(fixed=int(s * vae), per_clip=int(s * (transformer + latents + text) + video),
                          detail=(("transformer", int(s * transformer)), ("vae", int(s * vae)),
                                  ("video", video), ("latents", int(s * (latents + text)))))

    # ------------------------------------------------------------------ scheduler

    def _shift_key(self) -> str | None:
        for key in ("flow_shift", "shift"):
            if key in self.scheduler_config:
                return key
        return None

    def make_scheduler(self, steps: int, shift: float | None = None):
        overrides = {}
        if shift is not None:
            key = self._shift_key()
            if key is None:
                raise ModelError(f"{self.scheduler_class.__name__} has no shift setting")
            overrides[key] = float(shift)
        sched = self.scheduler_class.from_config(self.scheduler_config, **overrides)
        sched.set_timesteps(steps, device=self.device)
        return sched

    def scheduler_info(self, scheduler) -> dict:
        key = self._shift_key()
        return {"class": type(scheduler).__name__,
                "shift": float(scheduler.config[key]) if key else None,
                "prediction_type": scheduler.config.get("prediction_type"),
                "num_train_timesteps": int(scheduler.config.get("num_train_timesteps", 1000))}

    # ------------------------------------------------------------------ text

    def encode_text(self, prompts: list[str]):
        import torch

        tok = self.tokenizer([clean_prompt(p) for p in prompts], padding="max_length",
                             max_length=self.max_sequence_length, truncation=True, add_special_tokens=True,
                             return_attention_mask=True, return_tensors="pt")
        ids, mask = tok.input_ids.to(self.device), tok.attention_mask.to(self.device)
        # no_grad, not inference_mode: a trainer may feed these tensors to modules that need grad
        with torch.no_grad():
            emb = self.text_encoder(ids, mask).last_hidden_state
        # positions past each prompt's length are zero, not the encoder's padding states
        return (emb * mask.unsqueeze(-1).to(emb.dtype)).to(self.dtype)

    # ------------------------------------------------------------------ video

    def encode_video(self, video):
        import torch

        with torch.no_grad():
            z = self.vae.encode(video.to(self.device, self.vae_dtype)).latent_dist.mode()
        return (z.float() - self._lat_mean) / self._lat_std

    def decode_video(self, latents):
        import torch

        z = latents.float() * self._lat_std + self._lat_mean
        with torch.no_grad():
            out = self.vae.decode(z.to(self.vae_dtype)).sample
        return out.float().clamp(-1, 1)

    def predict(self, latents, timesteps, text):
        import torch

        with torch.no_grad():
            out = self.transformer(hidden_states=latents.to(self.dtype), timestep=timesteps,
                                   encoder_hidden_states=text, return_dict=False)[0]
        return out.float()
