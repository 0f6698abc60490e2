"""3-D RoPE with per-token temporal indices (paper §3.2 "separated conditional RoPE", A.5.7).

Wan's ``WanRotaryPosEmbed`` gives the tokens of one video the temporal indices
``0..f-1`` and cannot index past ``rope_max_seq_len``. UniMMVSR needs the target at
``0..f-1``, ID images from 20 and the reference video from 30 on the same sequence, so
this module builds the same (cos, sin) tables for any list of token segments, each with
its own temporal indices, and with the same height/width indices as Wan.

For every index Wan supports, the table rows are Wan's own buffers (copied, not
recomputed), so a target-only sequence gets bit-identical rotary embeddings; rows past
Wan's length are computed with the same diffusers function and arguments.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Segment:
    """One group of tokens laid out as Wan patchifies a video: (frames, height, width) in patches."""
    kind: str                 # "target", "images", "video"
    t_index: tuple[int, ...]  # temporal RoPE index of each patch frame
    height: int               # patches along H
    width: int                # patches along W

    @property
    def num_tokens(self) -> int:
        return len(self.t_index) * self.height * self.width


def _tables(dim: int, length: int, theta: float, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    return get_1d_rotary_pos_embed(dim, length, theta, use_real=True, repeat_interleave_real=True,
                                   freqs_dtype=dtype)


class IndexedRope(nn.Module):
    """Rotary tables of a Wan transformer, indexable by arbitrary per-token positions."""

    def __init__(self, attention_head_dim: int, patch_size, max_index: int, base_rope: nn.Module | None = None,
                 theta: float = 10000.0):
        super().__init__()
        self.attention_head_dim = attention_head_dim
        self.patch_size = tuple(patch_size)
        h_dim = w_dim = 2 * (attention_head_dim // 6)
        t_dim = attention_head_dim - h_dim - w_dim
        self.dims = (t_dim, h_dim, w_dim)
        self.theta = theta
        base_len = int(base_rope.max_seq_len) if base_rope is not None else 0
        self.length = max(int(max_index) + 1, base_len)
        freqs_dtype = torch.float32 if torch.backends.mps.is_available() else torch.float64
        cos, sin = [], []
        for dim in self.dims:
            c, s = _tables(dim, self.length, theta, freqs_dtype)
            cos.append(c)
            sin.append(s)
        cos, sin = torch.cat(cos, dim=1), torch.cat(sin, dim=1)
        if base_rope is not None:
            # the rows Wan has: its own values, so target-only sequences match it bit for bit
            cos[:base_len] = base_rope.freqs_cos.detach().to("cpu", cos.dtype)
            sin[:base_len] = base_rope.freqs_sin.detach().to("cpu", sin.dtype)
        self.register_buffer("freqs_cos", cos, persistent=False)
        self.register_buffer("freqs_sin", sin, persistent=False)

    @classmethod
    def from_wan(cls, rope: nn.Module, max_index: int) -> "IndexedRope":
        return cls(rope.attention_head_dim, rope.patch_size, max_index, base_rope=rope)

    def forward(self, segments: list[Segment]) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin), each ``(1, S, 1, head_dim)``, for the concatenation of ``segments``."""
        dev = self.freqs_cos.device
        cos_t, cos_h, cos_w = self.freqs_cos.split(self.dims, dim=1)
        sin_t, sin_h, sin_w = self.freqs_sin.split(self.dims, dim=1)
        cos_parts, sin_parts = [], []
        for seg in segments:
            if max(seg.t_index, default=0) >= self.length or max(seg.height, seg.width) > self.length:
                raise ValueError(f"RoPE index past the table ({self.length} rows) for segment {seg.kind}")
            f, h, w = len(seg.t_index), seg.height, seg.width
            ti = torch.tensor(seg.t_index, dtype=torch.long, device=dev)
            parts_c = [cos_t[ti].view(f, 1, 1, -1).expand(f, h, w, -1),
                       cos_h[:h].view(1, h, 1, -1).expand(f, h, w, -1),
                       cos_w[:w].view(1, 1, w, -1).expand(f, h, w, -1)]
            parts_s = [sin_t[ti].view(f, 1, 1, -1).expand(f, h, w, -1),
                       sin_h[:h].view(1, h, 1, -1).expand(f, h, w, -1),
                       sin_w[:w].view(1, 1, w, -1).expand(f, h, w, -1)]
            cos_parts.append(torch.cat(parts_c, dim=-1).reshape(f * h * w, -1))
            sin_parts.append(torch.cat(parts_s, dim=-1).reshape(f * h * w, -1))
        cos = torch.cat(cos_parts, dim=0)
        sin = torch.cat(sin_parts, dim=0)
        return cos.reshape(1, cos.shape[0], 1, -1), sin.reshape(1, sin.shape[0], 1, -1)


def temporal_indices(kind: str, count: int, starts: dict[str, int]) -> tuple[int, ...]:
    """``count`` consecutive temporal indices from the configured start of ``kind``."""
    s = starts[kind]
    return tuple(range(s, s + count))
