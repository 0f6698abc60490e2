"""The UniMMVSR denoiser, built around a diffusers ``WanTransformer3DModel`` (paper §3.2, SPEC §7).

What changes from the text-to-video transformer it starts from:

* **LR by channel concatenation** — the patch embedding takes ``2·z`` channels, the noisy HR
  latent then the (noise-augmented) LR latent. The first ``z`` input channels are the T2V
  weights, the new ``z`` are zero, so before training the model *is* the T2V model whatever
  the LR latent holds. (The convolution is evaluated as two products over the two channel
  halves of one weight, so that equality is bit-exact rather than up to summation order.)
* **Visual references by token concatenation** — ID images and the reference video, zero-padded
  in pixels to the HR size and VAE-encoded, go through the same patch embedding (their LR
  channels are zero) and are appended to the target tokens. Every block sees one sequence
  (3-D self-attention across target and references; per-token text cross-attention and FFN);
  reference tokens are cut before the output head.
* **Separated RoPE** — temporal indices target ``0..f-1``, images from 20, video from 30
  (:mod:`.rope`), Wan's tables for every index Wan has.
* **Noise-augmentation micro-condition** — the LR latent's noise timestep goes through its own
  sinusoidal + MLP embedder, last layer zero-initialised, added to the time embedding.

The transformer's blocks, condition embedder, output norm and projection are the base
model's own modules (shared, not copied).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .rope import IndexedRope, Segment, temporal_indices

REF_KINDS = ("images", "video")


class AugEmbedding(nn.Module):
    """Sinusoidal embedding of the LR noise-augmentation timestep, zero at initialisation.

    The first linear layer gets PyTorch's default initialisation (Kaiming-uniform weights,
    uniform bias), drawn from ``generator`` rather than the global generator, so that a run
    is reproducible from its seed alone; the last layer is zero.
    """

    def __init__(self, freq_dim: int, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        self.proj = Timesteps(num_channels=freq_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.embedder = TimestepEmbedding(in_channels=freq_dim, time_embed_dim=dim)
        lin = self.embedder.linear_1
        bound = 1.0 / math.sqrt(lin.in_features)
        with torch.no_grad():   # what nn.Linear.reset_parameters draws, from our generator
            lin.weight.uniform_(-bound, bound, generator=generator)
            lin.bias.uniform_(-bound, bound, generator=generator)
        nn.init.zeros_(self.embedder.linear_2.weight)
        nn.init.zeros_(self.embedder.linear_2.bias)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = self.proj(t)
        return self.embedder(x.to(self.embedder.linear_1.weight.dtype))


class UniMMVSR(nn.Module):
    """The super-resolution denoiser. ``forward`` returns the flow velocity ``ε − x₀`` of the target."""

    def __init__(self, base, rope_starts: dict[str, int] | None = None, max_images: int | None = None,
                 seed: int = 0):
        super().__init__()
        cfg = base.config
        self.rope_starts = dict(rope_starts or {"target": 0, "images": 20, "video": 30})
        if not self.rope_starts["target"] < self.rope_starts["images"] < self.rope_starts["video"]:
            raise ValueError(f"rope starts must increase target < images < video, got {self.rope_starts}")
        self.max_images = max_images or (self.rope_starts["video"] - self.rope_starts["images"])
        self.max_target_frames = self.rope_starts["images"] - self.rope_starts["target"]
        self.patch_size = tuple(int(p) for p in cfg.patch_size)
        self.latent_channels = int(cfg.in_channels)
        self.out_channels = int(cfg.out_channels or cfg.in_channels)
        inner = int(cfg.num_attention_heads) * int(cfg.attention_head_dim)
        self.inner_dim = inner
        self.base_config = dict(cfg)

        # channel-concatenated input embedding: [noisy HR | LR], LR half zero-initialised
        z = self.latent_channels
        pe = base.patch_embedding
        self.patch_embedding = nn.Conv3d(2 * z, inner, kernel_size=self.patch_size, stride=self.patch_size)
        with torch.no_grad():
            self.patch_embedding.weight.zero_()
            self.patch_embedding.weight[:, :z].copy_(pe.weight)
            self.patch_embedding.bias.copy_(pe.bias)
        self.patch_embedding.to(pe.weight.dtype)

        self.condition_embedder = base.condition_embedder
        # every new parameter not copied from the base or zeroed is drawn from this generator
        gen = torch.Generator().manual_seed(int(seed))
        self.aug_embedder = AugEmbedding(int(cfg.freq_dim), inner, generator=gen).to(pe.weight.dtype)
        self.blocks = base.blocks
        self.norm_out = base.norm_out
        self.proj_out = base.proj_out
        self.scale_shift_table = base.scale_shift_table
        max_video = 64   # reference-video latent frames the table covers beyond its start
        self.rope = IndexedRope.from_wan(base.rope, self.rope_starts["video"] + max_video)
        self.gradient_checkpointing = False

    # ---------------------------------------------------------------- pieces

    def _embed(self, x: torch.Tensor, lr: torch.Tensor | None) -> torch.Tensor:
        """Patch-embed ``x`` (and ``lr`` into the second channel half); tokens ``(B, S, D)``."""
        z = self.latent_channels
        w, b = self.patch_embedding.weight, self.patch_embedding.bias
        out = F.conv3d(x.to(w.dtype), w[:, :z], b, stride=self.patch_size)
        if lr is not None:
            out = out + F.conv3d(lr.to(w.dtype), w[:, z:], None, stride=self.patch_size)
        return out.flatten(2).transpose(1, 2)

    def segments(self, target_shape, refs: Sequence[tuple[str, torch.Tensor]] = ()) -> list[Segment]:
        """RoPE segments: the target, then each reference in order (shapes are latent shapes)."""
        p_t, p_h, p_w = self.patch_size
        f, h, w = target_shape[-3:]
        ppf, pph, ppw = f // p_t, h // p_h, w // p_w
        if ppf > self.max_target_frames:
            raise ValueError(f"{ppf} target latent frames overlap the image RoPE range "
                             f"(starts {self.rope_starts}); at most {self.max_target_frames}")
        segs = [Segment("target", temporal_indices("target", ppf, self.rope_starts), pph, ppw)]
        used = {"images": 0, "video": 0}
        for kind, lat in refs:
            if kind not in REF_KINDS:
                raise ValueError(f"unknown reference kind {kind!r}; expected one of {REF_KINDS}")
            if tuple(lat.shape[-2:]) != (h, w):
                raise ValueError(f"reference latent {tuple(lat.shape[-2:])} is not the target's {(h, w)}: "
                                 "references are zero-padded to the HR size before encoding")
            n = lat.shape[-3] // p_t
            start = self.rope_starts[kind] + used[kind]
            used[kind] += n
            if kind == "images" and used[kind] > self.max_images:
                raise ValueError(f"{used[kind]} ID images; the image RoPE range holds {self.max_images}")
            segs.append(Segment(kind, tuple(range(start, start + n)), pph, ppw))
        return segs

    def _time(self, timestep, aug_t, text):
        ce = self.condition_embedder
        t = ce.timesteps_proj(timestep)
        dtype = next(iter(ce.time_embedder.parameters())).dtype
        if t.dtype != dtype and dtype != torch.int8:
            t = t.to(dtype)
        temb = ce.time_embedder(t).type_as(text)
        if aug_t is not None:
            temb = temb + self.aug_embedder(aug_t).type_as(temb)
        timestep_proj = ce.time_proj(ce.act_fn(temb)).unflatten(1, (6, -1))
        return temb, timestep_proj, ce.text_embedder(text)

    # ---------------------------------------------------------------- forward

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor, lr: torch.Tensor | None = None,
                aug_t: torch.Tensor | None = None, refs: Sequence[tuple[str, torch.Tensor]] = ()) -> torch.Tensor:
        """Velocity for the noisy HR latent ``x`` ``(B, z, f, h, w)``.

        ``timestep`` ``(B,)`` in [0, 1000]; ``text`` ``(B, L, text_dim)``; ``lr`` the noise-augmented LR
        latent (same shape as ``x``; None = zeros); ``aug_t`` ``(B,)`` its noise timestep;
        ``refs`` a list of ``("images" | "video", latent (B, z, n, h, w))``.
        """
        b, _, f, h, w = x.shape
        p_t, p_h, p_w = self.patch_size
        segs = self.segments(x.shape, refs)
        rotary = self.rope(segs)
        tokens = [self._embed(x, lr)]
        for _, lat in refs:
            tokens.append(self._embed(lat, None))
        hidden = torch.cat(tokens, dim=1).contiguous() if len(tokens) > 1 else tokens[0].contiguous()
        n_target = segs[0].num_tokens

        temb, timestep_proj, enc = self._time(timestep, aug_t, text)
        if self.gradient_checkpointing and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            for block in self.blocks:
                hidden = checkpoint(block, hidden, enc, timestep_proj, rotary, use_reentrant=False)
        else:
            for block in self.blocks:
                hidden = block(hidden, enc, timestep_proj, rotary)

        hidden = hidden[:, :n_target]              # references are cut before the head
        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        hidden = (self.norm_out(hidden.float()) * (1 + scale) + shift).type_as(hidden)
        hidden = self.proj_out(hidden)
        hidden = hidden.reshape(b, f // p_t, h // p_h, w // p_w, p_t, p_h, p_w, -1)
        hidden = hidden.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return hidden.flatten(6, 7).flatten(4, 5).flatten(2, 3)

    # ---------------------------------------------------------------- (de)serialisation

    def describe(self) -> dict:
        return {"class": "UniMMVSR", "rope_starts": self.rope_starts, "max_images": self.max_images,
                "latent_channels": self.latent_channels, "patch_size": list(self.patch_size),
                "base_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.base_config.items()
                                if not k.startswith("_")}}


def build(base_transformer, rope_starts: dict[str, int] | None = None, max_images: int | None = None,
          seed: int = 0) -> UniMMVSR:
    """A UniMMVSR model initialised from a T2V transformer (which keeps working as before).

    Parameters that are neither the base model's nor zero are drawn from a generator seeded
    with ``seed`` (the training config's), never from PyTorch's global generator.
    """
    return UniMMVSR(base_transformer, rope_starts=rope_starts, max_images=max_images, seed=seed)
