"""Edit references for ``edit`` clips: pure functions over ``(T, H, W, 3)`` uint8 frames.

The local-editing recipe of paper A.2: choose one object, follow its mask through the
clip, dilate it, and make a reference video that equals the HR clip outside the mask
and is changed inside it, either with the object removed (``inpaint``: OpenCV's
Telea/Navier-Stokes inpainting, frame by frame) or recoloured (``recolor``: its
chroma moved to another hue in CIELAB, lightness and texture kept).

1. ``choose_object``: among the per-frame instances, one whose area is a local
   region (between ``min_area`` and ``max_area`` of the frame), the largest or a
   random one; the frame it is chosen in is the *anchor*.
2. ``track_object``: from the anchor forwards and backwards, the mask is carried to
   the next frame along dense optical flow and associated with that frame's instance
   of the same label of highest IoU (at least ``min_iou``); where none matches, the
   carried mask stands in and the frame counts as missed.
3. ``dilate_masks``; ``edit_frames`` (outside the mask the output *is* the input).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import cv2
import numpy as np

from .segment import Instance, mask_iou


@dataclass(frozen=True)
class ObjectRules:
    min_area: float = 0.02                 # fraction of the frame, in the anchor frame
    max_area: float = 0.4                  # larger objects are not a local edit
    min_score: float = 0.0
    choose: Literal["largest", "random"] = "largest"


def choose_object(per_frame: Sequence[Sequence[Instance]], frame_hw: tuple[int, int], rules: ObjectRules,
                  rng: np.random.Generator | None = None) -> tuple[int, int] | None:
    """(frame, instance index) of the object to edit, or None when no instance qualifies."""
    h, w = frame_hw
    cands = [(t, k, inst.area) for t, insts in enumerate(per_frame) for k, inst in enumerate(insts)
             if inst.score >= rules.min_score and rules.min_area * h * w <= inst.area <= rules.max_area * h * w]
    if not cands:
        return None
    if rules.choose == "random":
        rng = rng if rng is not None else np.random.default_rng(0)
        t, k, _ = cands[int(rng.integers(len(cands)))]
    else:
        t, k, _ = max(cands, key=lambda c: (c[2], -c[0]))
    return t, k


@dataclass
class Track:
    masks: np.ndarray                      # (T, H, W) bool
    label: str
    anchor: int
    found: list[bool] = field(default_factory=list)   # a detection matched in this frame
    ious: list[float | None] = field(default_factory=list)
    propagation: str = "hold"

    @property
    def missed(self) -> int:
        return sum(1 for f in self.found if not f)


def _gray_small(frame: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    h, w = frame.shape[:2]
    s = min(1.0, side / max(h, w))
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if s < 1:
        g = cv2.resize(g, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return g, s


def propagate_mask(mask: np.ndarray, src: np.ndarray, dst: np.ndarray, work_side: int = 480) -> np.ndarray:
    """``mask`` of frame ``src`` carried to frame ``dst`` along dense optical flow (Farneback)."""
    h, w = mask.shape
    g_dst, s = _gray_small(dst, work_side)
    g_src, _ = _gray_small(src, work_side)
    # for each pixel of dst, where it was in src
    flow = cv2.calcOpticalFlowFarneback(g_dst, g_src, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    sh, sw = g_dst.shape
    m = cv2.resize(mask.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) if s < 1 else mask.astype(np.float32)
    gx, gy = np.meshgrid(np.arange(sw, dtype=np.float32), np.arange(sh, dtype=np.float32))
    warped = cv2.remap(m, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if s < 1:
        warped = cv2.resize(warped, (w, h), interpolation=cv2.INTER_LINEAR)
    return warped >= 0.5


def track_object(per_frame: Sequence[Sequence[Instance]], anchor: int, index: int, min_iou: float = 0.3,
                 frames: np.ndarray | None = None) -> Track:
    """Follow instance ``index`` of frame ``anchor`` through every frame by mask IoU association.

    Each step predicts the object's mask in the next frame, by optical flow when
    ``frames`` are given (else the previous mask as is), and takes that frame's
    instance of the same label with the highest IoU with the prediction (at least
    ``min_iou``); with none, the prediction itself is the mask and the frame is missed.
    """
    start = per_frame[anchor][index]
    t_len = len(per_frame)
    masks = np.zeros((t_len,) + start.mask.shape, bool)
    found = [False] * t_len
    ious: list[float | None] = [None] * t_len
    masks[anchor], found[anchor], ious[anchor] = start.mask, True, 1.0
    for direction in (1, -1):
        prev = start.mask
        t = anchor + direction
        while 0 <= t < t_len:
            pred = prev if frames is None else propagate_mask(prev, frames[t - direction], frames[t])
            best, best_iou = None, min_iou
            for inst in per_frame[t]:
                if inst.label != start.label or inst.mask.shape != pred.shape:
                    continue
                iou = mask_iou(inst.mask, pred)
                if iou >= best_iou:
                    best, best_iou = inst, iou
            if best is not None:
                pred, found[t], ious[t] = best.mask, True, round(best_iou, 4)
            masks[t] = prev = pred
            t += direction
    return Track(masks=masks, label=start.label, anchor=anchor, found=found, ious=ious,
                 propagation="hold" if frames is None else "flow")


def dilate_masks(masks: np.ndarray, px: int) -> np.ndarray:
    """Grow each ``(T, H, W)`` mask by ``px`` pixels (elliptical structuring element)."""
    if px <= 0:
        return masks.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), k).astype(bool) for m in masks])


@dataclass(frozen=True)
class InpaintParams:
    radius: int = 5
    algorithm: Literal["telea", "ns"] = "telea"
    work_side: int = 512                   # frames are inpainted at most this large, then upscaled inside the mask


@dataclass(frozen=True)
class RecolorParams:
    hue_deg: float                         # target hue in CIELAB's a-b plane, degrees
    chroma: float                          # target chroma (CIELAB units)
    texture: float = 0.5                   # how much of the object's own chroma variation is kept


def recolor_params(frames: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> RecolorParams:
    """A new colour for the object: a hue 120-240 degrees away from its mean, chroma 35-60."""
    lab = _lab(frames[masks.any(axis=(1, 2))], masks[masks.any(axis=(1, 2))])
    a, b = (lab[:, 1].mean(), lab[:, 2].mean()) if lab.size else (0.0, 0.0)
    hue = (np.degrees(np.arctan2(b, a)) + 180.0 + rng.uniform(-60.0, 60.0)) % 360.0
    return RecolorParams(hue_deg=round(float(hue), 2), chroma=round(float(rng.uniform(35.0, 60.0)), 2))


def _lab(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """CIELAB values of the masked pixels, ``(N, 3)`` float32 (L 0-100)."""
    if not masks.any():
        return np.zeros((0, 3), np.float32)
    px = frames[masks].astype(np.float32)[None] / 255.0
    return cv2.cvtColor(px, cv2.COLOR_RGB2LAB)[0]


def recolor(frames: np.ndarray, masks: np.ndarray, params: RecolorParams) -> np.ndarray:
    """Frames with the masked pixels' chroma moved to ``params``' hue; lightness unchanged."""
    out = frames.copy()
    if not masks.any():
        return out
    lab = _lab(frames, masks)
    ab = lab[:, 1:]
    target = params.chroma * np.array([np.cos(np.radians(params.hue_deg)), np.sin(np.radians(params.hue_deg))],
                                      np.float32)
    lab[:, 1:] = target + params.texture * (ab - ab.mean(axis=0))
    rgb = cv2.cvtColor(lab[None], cv2.COLOR_LAB2RGB)[0]
    out[masks] = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    return out


def inpaint(frames: np.ndarray, masks: np.ndarray, params: InpaintParams = InpaintParams()) -> np.ndarray:
    """Frames with the masked region filled from its surroundings (the object removed)."""
    flag = cv2.INPAINT_TELEA if params.algorithm == "telea" else cv2.INPAINT_NS
    out = frames.copy()
    h, w = frames.shape[1:3]
    s = min(1.0, params.work_side / max(h, w))
    for t in range(frames.shape[0]):
        m = masks[t]
        if not m.any():
            continue
        if s < 1:
            sw, sh = max(1, round(w * s)), max(1, round(h * s))
            small = cv2.resize(frames[t], (sw, sh), interpolation=cv2.INTER_AREA)
            sm = (cv2.resize(m.astype(np.uint8) * 255, (sw, sh), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
            filled = cv2.inpaint(small, sm, params.radius, flag)
            filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            filled = cv2.inpaint(np.ascontiguousarray(frames[t]), m.astype(np.uint8), params.radius, flag)
        out[t][m] = filled[m]
    return out


def edit_frames(frames: np.ndarray, masks: np.ndarray, method: Literal["inpaint", "recolor"],
                params: InpaintParams | RecolorParams) -> np.ndarray:
    """The reference video: ``frames`` outside ``masks`` exactly, edited inside."""
    edited = inpaint(frames, masks, params) if method == "inpaint" else recolor(frames, masks, params)
    return np.where(masks[..., None], edited, frames)


def mask_video(masks: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` bool masks as ``(T, H, W, 3)`` uint8 frames, 255 inside, for lossless storage."""
    return np.repeat((masks.astype(np.uint8) * 255)[..., None], 3, axis=-1)
