"""DOVER's two input views of a clip, sampled as the released evaluator samples them.

Technical view (FAST-VQA "fragments"): the clip is cut into ``num_clips`` equal temporal
segments; from each, ``clip_len`` frames ``frame_interval`` apart start at a random offset
(indices wrap around short clips). Every frame is then cut into a ``fragments × fragments``
grid of cells; from each cell one ``fragment_size`` square is taken at a random offset inside
the cell (the same offset for all frames of a segment), and the squares are spliced into a
(fragments · fragment_size)² picture: 7 × 32 = 224. Native-resolution pixels are kept, so
blur, noise and compression stay visible.

Aesthetic view: ``aesthetic_frames`` frames, one per equal segment at a random offset, each
resized to ``aesthetic_size``² (aspect ratio not kept).

Both views are normalised with the ImageNet mean/std on the 0..255 scale. Randomness comes
from an explicit seed, so a clip always gets the same views (the released code draws from
the global numpy/torch generators; seeding those the same way gives the same views).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class ViewParams:
    fragments: int = 7            # grid cells per side of the technical view
    fragment_size: int = 32       # pixels per fragment side
    clip_len: int = 32            # frames per technical clip
    frame_interval: int = 2       # frame step inside a technical clip and between aesthetic frames
    num_clips: int = 3            # technical clips (temporal segments) per video
    aesthetic_size: int = 224     # side of the aesthetic view
    aesthetic_frames: int = 32    # frames of the aesthetic view
    # The released evaluator resized with torchvision's tensor Resize, which did not antialias
    # in the torchvision of its time (torch ~1.13); newer torchvision antialiases by default.
    aesthetic_antialias: bool = False


def segment_indices(num_frames: int, segments: int, seg_len: int, interval: int,
                    rng: np.random.RandomState) -> np.ndarray:
    """Frame indices: ``segments`` equal parts, ``seg_len`` frames ``interval`` apart in each,
    starting at a random offset inside the part when it is long enough; wraps modulo ``num_frames``."""
    part = num_frames // segments
    starts = np.array([part * i for i in range(segments)], dtype=np.int64)
    span = seg_len * interval
    if part > span:
        offsets = rng.randint(0, part - span, size=segments)
    else:
        offsets = np.zeros(segments, dtype=np.int64)
    idx = np.arange(seg_len)[None, :] * interval + offsets[:, None] + starts[:, None]
    return np.mod(idx.reshape(-1), num_frames).astype(np.int64)


def technical_indices(num_frames: int, p: ViewParams, rng: np.random.RandomState) -> np.ndarray:
    return segment_indices(num_frames, p.num_clips, p.clip_len, p.frame_interval, rng)


def aesthetic_indices(num_frames: int, p: ViewParams, rng: np.random.RandomState) -> np.ndarray:
    return segment_indices(num_frames, p.aesthetic_frames, 1, p.frame_interval, rng)


def fragment_offsets(height: int, width: int, groups: int, p: ViewParams,
                     gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left pixel (rows, cols) of every fragment: two (fragments, fragments, groups) tensors.

    Cell ``i`` starts at ``min(i * (size // fragments), size - fragment_size)``; inside the
    cell the fragment moves by a random offset in ``[0, size // fragments - fragment_size)``
    when the cell is wider than a fragment, else it sits at the cell start. One draw per
    cell and temporal group (rows drawn before columns).
    """
    n, fs = p.fragments, p.fragment_size
    cell_h, cell_w = height // n, width // n
    top0 = torch.tensor([min(cell_h * i, height - fs) for i in range(n)])
    left0 = torch.tensor([min(cell_w * j, width - fs) for j in range(n)])
    shape = (n, n, groups)
    dh = torch.randint(cell_h - fs, shape, generator=gen) if cell_h > fs else torch.zeros(shape, dtype=torch.long)
    dw = torch.randint(cell_w - fs, shape, generator=gen) if cell_w > fs else torch.zeros(shape, dtype=torch.long)
    return top0[:, None, None] + dh, left0[None, :, None] + dw


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """(3, T, H, W) 0..255 -> normalised float32."""
    mean = torch.tensor(MEAN).view(3, 1, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1, 1)
    return (x.float() - mean) / std


def technical_view(frames: np.ndarray, indices: np.ndarray, p: ViewParams, gen: torch.Generator) -> torch.Tensor:
    """Fragments of ``frames[indices]``: (num_clips, 3, clip_len, side, side), normalised.

    Frames smaller than the view are first upscaled (bilinear) so the short side fills it;
    as released, the cell grid is still laid out on the original size, so fragments come
    from the top-left part of the upscaled frame.
    """
    n, fs = p.fragments, p.fragment_size
    side = n * fs
    _, h, w, _ = frames.shape
    ratio = min(h / side, w / side)
    groups = len(indices) // p.clip_len
    top, left = fragment_offsets(h, w, groups, p, gen)
    out = torch.zeros((3, len(indices), side, side))
    for k, fi in enumerate(indices):
        img = torch.from_numpy(np.ascontiguousarray(frames[fi])).permute(2, 0, 1)      # (3, H, W) uint8
        if ratio < 1:
            img = (F.interpolate(img[None] / 255.0, scale_factor=1 / ratio, mode="bilinear")[0] * 255.0).to(torch.uint8)
        g = k // p.clip_len
        for i in range(n):
            for j in range(n):
                y, x = int(top[i, j, g]), int(left[i, j, g])
                out[:, k, i * fs:(i + 1) * fs, j * fs:(j + 1) * fs] = img[:, y:y + fs, x:x + fs]
    out = _normalise(out)
    return out.reshape(3, p.num_clips, -1, side, side).transpose(0, 1).contiguous()


def aesthetic_view(frames: np.ndarray, indices: np.ndarray, p: ViewParams) -> torch.Tensor:
    """``frames[indices]`` resized to ``aesthetic_size``²: (1, 3, aesthetic_frames, side, side), normalised."""
    s = p.aesthetic_size
    out = torch.empty((3, len(indices), s, s), dtype=torch.uint8)
    for k, fi in enumerate(indices):
        img = torch.from_numpy(np.ascontiguousarray(frames[fi])).permute(2, 0, 1)[None].float()
        img = F.interpolate(img, size=(s, s), mode="bilinear", align_corners=False, antialias=p.aesthetic_antialias)
        out[:, k] = img[0].round().clamp(0, 255).to(torch.uint8)
    return _normalise(out)[None]


def make_views(frames: np.ndarray, p: ViewParams = ViewParams(), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Both views of one clip, reproducible from ``seed``: ``(technical, aesthetic)``."""
    rng = np.random.RandomState(seed)
    gen = torch.Generator().manual_seed(seed)
    t_idx = technical_indices(len(frames), p, rng)
    a_idx = aesthetic_indices(len(frames), p, rng)
    return technical_view(frames, t_idx, p, gen), aesthetic_view(frames, a_idx, p)
