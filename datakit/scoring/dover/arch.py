"""DOVER's networks, written for datakit so the released checkpoints load unchanged.

DOVER (Wu et al., ICCV 2023, "Exploring Video Quality Assessment on User Generated
Contents from Aesthetic and Technical Perspectives") scores a video with two branches:

- technical: a 3-D Swin-T (patch 2×4×4, window 8×7×7, depths 2/2/6/2) over *fragments*
  (see ``views.py``); its window attention adds a second relative-position table used
  between tokens of the same fragment (stages 1-3), because fragments are spliced from
  unrelated places of the frame;
- aesthetic: an inflated 3-D ConvNeXt-T over a downscaled view of the whole frame;
- per branch an MLP head of 1×1×1 convolutions that scores every output position; the
  branch score is the mean over positions and clips.

DOVER-Mobile swaps both backbones for an inflated 3-D ConvNeXt-V2 femto. DOVER++ has
DOVER's architecture (other training data). Module and parameter names follow the
released state dicts (``technical_backbone.*``, ``aesthetic_backbone.*``,
``technical_head.*``, ``aesthetic_head.*``); tests/data lists every key and shape.
A few numerical details look accidental but are what the released weights were trained
with, so they are reproduced (each is marked "as released").
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------- ConvNeXt (3-D)


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of an (N, C, ...) tensor."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return self.weight.view(shape) * x + self.bias.view(shape)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-V2's GRN on channels-last (N, T, H, W, C) input.

    As released, the L2 norm is taken over the T and H axes only (the 2-D original pools
    over both spatial axes; the 3-D port kept the axis numbers).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtBlock3D(nn.Module):
    """Depthwise (k×7×7) conv, LayerNorm, MLP ×4 (GRN inside for V2, layer scale for V1), residual."""

    def __init__(self, dim: int, temporal_kernel: int, v2: bool):
        super().__init__()
        k = temporal_kernel
        self.dwconv = nn.Conv3d(dim, dim, kernel_size=(k, 7, 7), padding=(k // 2, 3, 3), groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GlobalResponseNorm(4 * dim) if v2 else None
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = None if v2 else nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 4, 1)
        y = self.act(self.pwconv1(self.norm(y)))
        if self.grn is not None:
            y = self.grn(y)
        y = self.pwconv2(y)
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.permute(0, 4, 1, 2, 3)


class ConvNeXt3D(nn.Module):
    """ConvNeXt inflated to video: stem 2×4×4 (stride 2×4×4), then 1×2×2 downsampling; the
    temporal kernel of the blocks cycles through ``inflate`` ("131": 1, 3, 1, 1, 3, ...).

    Returns the final feature map (N, C, T/2, H/32, W/32), LayerNorm-ed over channels.
    ``classifier`` adds the unused 1000-way ImageNet head that the V2 checkpoints carry.
    """

    def __init__(self, depths, dims, v2: bool = False, inflate: str = "131", classifier: bool = False):
        super().__init__()
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv3d(3, dims[0], kernel_size=(2, 4, 4), stride=(2, 4, 4)), ChannelsFirstLayerNorm(dims[0]))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                ChannelsFirstLayerNorm(dims[i]),
                nn.Conv3d(dims[i], dims[i + 1], kernel_size=(1, 2, 2), stride=(1, 2, 2))))
        self.stages = nn.ModuleList(
            nn.Sequential(*[ConvNeXtBlock3D(dims[i], int(inflate[j % len(inflate)]), v2) for j in range(depths[i])])
            for i in range(4))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], 1000) if classifier else None
        self.out_channels = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


# ----------------------------------------------------------------- Swin Transformer (3-D)


def effective_window(size, window, shift):
    """A window no larger than the feature map along each axis; no shift along an axis it covers."""
    window, shift = list(window), list(shift)
    for i, s in enumerate(size):
        if s <= window[i]:
            window[i], shift[i] = s, 0
    return tuple(window), tuple(shift)


def window_partition(x: torch.Tensor, window) -> torch.Tensor:
    """(B, D, H, W, C) -> (B * windows, wd * wh * ww, C)."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.view(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def window_merge(windows: torch.Tensor, window, b: int, d: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`."""
    wd, wh, ww = window
    x = windows.view(b, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def relative_position_index(window) -> torch.Tensor:
    """(N, N) index into a (2wd-1)(2wh-1)(2ww-1)-row table for every pair of tokens in a window."""
    wd, wh, ww = window
    grid = torch.stack(torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij"))
    flat = grid.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)
    rel[..., 0] += wd - 1
    rel[..., 1] += wh - 1
    rel[..., 2] += ww - 1
    return rel[..., 0] * (2 * wh - 1) * (2 * ww - 1) + rel[..., 1] * (2 * ww - 1) + rel[..., 2]


@lru_cache(maxsize=64)
def shift_mask(d: int, h: int, w: int, window, shift, device) -> torch.Tensor:
    """(windows, N, N) additive mask (0 / -100) that keeps shifted windows from mixing regions."""
    labels = torch.zeros((1, d, h, w, 1), device=device)
    n = 0
    for sd in (slice(-window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for sh in (slice(-window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            for sw in (slice(-window[2]), slice(-window[2], -shift[2]), slice(-shift[2], None)):
                labels[:, sd, sh, sw, :] = n
                n += 1
    lw = window_partition(labels, window).squeeze(-1)
    diff = lw.unsqueeze(1) - lw.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


@lru_cache(maxsize=64)
def fragment_gate(d: int, h: int, w: int, window, shift, device) -> torch.Tensor:
    """(windows, N, N) gate between token pairs: 0 when both tokens lie in the same fragment.

    Fragment membership follows the released model: a (1, wh, ww) grid stretched over the
    feature map by nearest-neighbour interpolation (for 224-pixel views and 7×7 windows that
    is exactly the 7×7 fragment grid), shifted with the window. As released the gate is the
    L1 distance between the two tokens' fragment coordinates, not a 0/1 flag.
    """
    grid = torch.stack(torch.meshgrid(torch.arange(1), torch.arange(window[1]), torch.arange(window[2]),
                                      indexing="ij")).float()
    coords = F.interpolate(grid[None].to(device), size=(d, h, w)).long().permute(0, 2, 3, 4, 1)
    coords = torch.roll(coords, shifts=(-shift[0], -shift[1], -shift[2]), dims=(1, 2, 3))
    cw = window_partition(coords, window)
    return (cw[:, None, :] - cw[:, :, None]).abs().sum(-1).float()


class WindowAttention3D(nn.Module):
    def __init__(self, dim: int, window, num_heads: int, fragment_bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads))
        self.fragment_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads)) if fragment_bias else None
        # persistent: the released checkpoints carry it
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _bias(self, table: torch.Tensor, n: int) -> torch.Tensor:
        # as released: a window smaller than configured takes the top-left n×n of the index
        idx = self.relative_position_index[:n, :n].reshape(-1)
        return table[idx].reshape(n, n, -1).permute(2, 0, 1)          # (heads, N, N)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, gate: torch.Tensor) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        nw = gate.shape[0]
        bias = self._bias(self.relative_position_bias_table, n).unsqueeze(0)       # (1, heads, N, N)
        if self.fragment_position_bias_table is not None:
            g = gate.unsqueeze(1)                                                   # (windows, 1, N, N)
            bias = bias * g + self._bias(self.fragment_position_bias_table, n).unsqueeze(0) * (1 - g)
        attn = attn.view(bw // nw, nw, self.num_heads, n, n) + bias.unsqueeze(0)
        if mask is not None:
            attn = attn + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, self.num_heads, n, n).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock3D(nn.Module):
    def __init__(self, dim: int, num_heads: int, window, shift, fragment_bias: bool):
        super().__init__()
        self.window, self.shift = tuple(window), tuple(shift)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, self.window, num_heads, fragment_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, d, h, w, c = x.shape
        window, shift = effective_window((d, h, w), self.window, self.shift)
        y = self.norm1(x)
        pd, ph, pw = ((window[i] - s % window[i]) % window[i] for i, s in enumerate((d, h, w)))
        y = F.pad(y, (0, 0, 0, pw, 0, ph, 0, pd))
        _, dp, hp, wp, _ = y.shape
        shifted = any(s > 0 for s in shift)
        if shifted:
            y = torch.roll(y, shifts=(-shift[0], -shift[1], -shift[2]), dims=(1, 2, 3))
        gate = fragment_gate(dp, hp, wp, window, shift, y.device)
        y = self.attn(window_partition(y, window), mask if shifted else None, gate)
        y = window_merge(y, window, b, dp, hp, wp)
        if shifted:
            y = torch.roll(y, shifts=shift, dims=(1, 2, 3))
        x = x + y[:, :d, :h, :w, :]
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2×2 spatial merge: concatenate the four neighbours (channels ×4), LayerNorm, project to ×2."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w, _ = x.shape
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinStage3D(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, window, fragment_bias: bool, downsample: bool):
        super().__init__()
        self.window = tuple(window)
        self.shift = tuple(s // 2 for s in window)
        self.blocks = nn.ModuleList(
            SwinBlock3D(dim, num_heads, window, (0, 0, 0) if i % 2 == 0 else self.shift, fragment_bias)
            for i in range(depth))
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, d, h, w = x.shape
        window, shift = effective_window((d, h, w), self.window, self.shift)
        dp, hp, wp = (-(-s // window[i]) * window[i] for i, s in enumerate((d, h, w)))
        mask = shift_mask(dp, hp, wp, window, shift, x.device)
        x = x.permute(0, 2, 3, 4, 1)
        for blk in self.blocks:
            x = blk(x, mask)
        if self.downsample is not None:
            x = self.downsample(x)
        return x.permute(0, 4, 1, 2, 3)


class PatchEmbed3D(nn.Module):
    def __init__(self, patch=(2, 4, 4), dim: int = 96):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, d, h, w = x.shape
        pd, ph, pw = ((-s) % p for s, p in zip((d, h, w), self.patch))
        if pd or ph or pw:
            x = F.pad(x, (0, pw, 0, ph, 0, pd))
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


class SwinTransformer3D(nn.Module):
    """Video Swin-T with fragment-aware attention bias (the "GRPB" backbone of FAST-VQA/DOVER).

    Returns the final feature map (N, 768, T/2, H/32, W/32), LayerNorm-ed over channels.
    """

    def __init__(self, embed_dim: int = 96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window=(8, 7, 7),
                 fragment_biases=(True, True, True, False)):
        super().__init__()
        self.patch_embed = PatchEmbed3D((2, 4, 4), embed_dim)
        self.layers = nn.ModuleList(
            SwinStage3D(embed_dim * 2 ** i, depths[i], num_heads[i], window, fragment_biases[i], i < len(depths) - 1)
            for i in range(len(depths)))
        self.out_channels = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


# ----------------------------------------------------------------- heads and the evaluator


class QualityHead(nn.Module):
    """Scores every position of a feature map: 1×1×1 conv -> GELU -> 1×1×1 conv to one channel.
    (The training-time dropout is the identity at inference and holds no parameters.)"""

    def __init__(self, in_channels: int, hidden_channels: int):
        super().__init__()
        self.fc_hid = nn.Conv3d(in_channels, hidden_channels, kernel_size=1)
        self.fc_last = nn.Conv3d(hidden_channels, 1, kernel_size=1)
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_last(self.gelu(self.fc_hid(x)))


ARCHS = ("dover", "mobile")


class DOVER(nn.Module):
    """Both branches and their heads. ``arch``: ``dover`` (DOVER, DOVER++) or ``mobile``."""

    def __init__(self, arch: str = "dover"):
        super().__init__()
        if arch == "dover":
            self.technical_backbone = SwinTransformer3D()
            self.aesthetic_backbone = ConvNeXt3D(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768))
            hidden = 64
        elif arch == "mobile":
            femto = dict(depths=(2, 2, 6, 2), dims=(48, 96, 192, 384), v2=True, classifier=True)
            self.technical_backbone = ConvNeXt3D(**femto)
            self.aesthetic_backbone = ConvNeXt3D(**femto)
            hidden = 32
        else:
            raise ValueError(f"unknown DOVER architecture {arch!r}; allowed: {', '.join(ARCHS)}")
        self.arch = arch
        self.technical_head = QualityHead(self.technical_backbone.out_channels, hidden)
        self.aesthetic_head = QualityHead(self.aesthetic_backbone.out_channels, hidden)

    def forward(self, technical: torch.Tensor, aesthetic: torch.Tensor, clips: int = 1):
        """Raw branch scores, one per video.

        ``technical``: (videos × clips, 3, T, H, W) normalised fragment clips, grouped by video;
        ``aesthetic``: (videos, 3, T, H, W). Returns ``(technical, aesthetic)``, each (videos,):
        the mean of the head's map over positions (and clips).
        """
        t = self.technical_head(self.technical_backbone(technical))
        a = self.aesthetic_head(self.aesthetic_backbone(aesthetic))
        videos = aesthetic.shape[0]
        return t.reshape(videos, -1).mean(1), a.reshape(videos, -1).mean(1)
