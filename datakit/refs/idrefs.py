"""ID references for ``mi2v`` clips: pure functions over frames and instances.

1. ``pick_reference_frames``: frames of the source *outside* the clip's span, at least
   ``min_gap`` frames away (paper A.2: "a non-overlapping frame"), so an ID crop is never
   a copy of the target. When the source has no such frame the pick is relaxed and the
   fallback is recorded: ``gap_relaxed`` (outside the span, closer than asked), then
   ``inside_span`` (the clip covers the whole source).
2. ``select_instances``: instances above a minimum area, duplicates removed, largest
   first, at most ``max_ids``; what was dropped and why is counted.
3. ``crop_instance``: the instance's box grown by a margin, pixels outside its mask set
   to a constant background, at the source frame's resolution.

Frame indices are on the clip's timeline: frame ``j`` of a source at the clip rate
``fps`` is the source frame on screen at ``source.start_time + j / fps``, the rule the
clip span itself follows (``start_frame``/``end_frame``).
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from PIL import Image

from .segment import Instance, mask_iou


@dataclass(frozen=True)
class FramePick:
    index: int              # frame on the clip-rate timeline of the source (0 = its first frame)
    gap: int                # frames strictly between the pick and the clip span; -1 inside it
    fallback: str | None    # None, "gap_relaxed" or "inside_span"


def span_gap(i: int, start: int, end: int) -> int:
    """Frames strictly between frame ``i`` and the span ``[start, end)``; -1 if ``i`` is inside."""
    if i < start:
        return start - 1 - i
    if i >= end:
        return i - end
    return -1


def pick_reference_frames(
    total: int, start: int, end: int, min_gap: int = 0, max_gap: int | None = None, count: int = 1,
    strategy: Literal["random", "nearest"] = "random", rng: np.random.Generator | None = None,
    inside_fallback: bool = True,
) -> list[FramePick]:
    """Up to ``count`` distinct reference frames among ``total`` source frames, best first.

    Preferred: outside ``[start, end)`` with ``min_gap <= gap <= max_gap``, in random order
    (``strategy='random'``) or nearest to the span first. Then (fallback ``gap_relaxed``)
    the other frames outside the span, closest to the allowed gap window first. Last,
    if ``inside_fallback``, frames inside the span (fallback ``inside_span``).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    idx = np.arange(max(0, total))
    gaps = np.where(idx < start, start - 1 - idx, np.where(idx >= end, idx - end, -1))
    hi = np.inf if max_gap is None else max_gap
    outside = gaps >= 0
    ok = outside & (gaps >= min_gap) & (gaps <= hi)

    def order(sel: np.ndarray, key: np.ndarray) -> list[int]:
        cand = idx[sel]
        if cand.size == 0:
            return []
        tiebreak = rng.permutation(cand.size) if strategy == "random" else np.zeros(cand.size)
        primary = np.zeros(cand.size) if strategy == "random" else gaps[sel]
        return [int(i) for i in cand[np.lexsort((tiebreak, primary, key[sel]))]]

    zero = np.zeros_like(gaps)
    window_dist = np.maximum(0, np.maximum(min_gap - gaps, gaps - (hi if np.isfinite(hi) else gaps)))
    picks = [FramePick(i, int(gaps[i]), None) for i in order(ok, zero)]
    picks += [FramePick(i, int(gaps[i]), "gap_relaxed") for i in order(outside & ~ok, window_dist)]
    if inside_fallback:
        # inside the span: start from its middle, the frame least like the clip's ends
        mid = (start + end - 1) / 2.0
        picks += [FramePick(i, -1, "inside_span") for i in order(~outside, np.abs(idx - mid))]
    return picks[:count]


@dataclass(frozen=True)
class IdRules:
    min_area: float = 0.01                        # fraction of the frame's area
    max_ids: int = 3
    min_score: float = 0.0
    max_overlap: float = 0.5                      # mask IoU with a larger kept instance: a duplicate
    margin: float = 0.1                           # fraction of the box's width/height added on each side
    background: tuple[int, int, int] = (255, 255, 255)


def select_instances(instances: Sequence[Instance], frame_hw: tuple[int, int],
                     rules: IdRules) -> tuple[list[Instance], dict[str, int]]:
    """Instances to crop (largest first, at most ``max_ids``) and counts of the dropped by reason."""
    h, w = frame_hw
    dropped: Counter[str] = Counter()
    kept: list[Instance] = []
    for inst in sorted(instances, key=lambda i: -i.area):
        if inst.score < rules.min_score:
            dropped["low_score"] += 1
        elif inst.area < rules.min_area * h * w:
            dropped["too_small"] += 1
        elif any(mask_iou(inst.mask, k.mask) > rules.max_overlap for k in kept):
            dropped["duplicate"] += 1
        elif len(kept) >= rules.max_ids:
            dropped["over_max_ids"] += 1
        else:
            kept.append(inst)
    return kept, dict(dropped)


def crop_box(box: tuple[int, int, int, int], frame_hw: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` x its width/height on each side, clipped to the frame."""
    x0, y0, x1, y1 = box
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    h, w = frame_hw
    return (max(0, int(np.floor(x0 - mx))), max(0, int(np.floor(y0 - my))),
            min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my))))


def crop_instance(frame: np.ndarray, inst: Instance, rules: IdRules) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The instance's crop (background outside its mask set to ``rules.background``) and the crop box."""
    cb = crop_box(inst.box, frame.shape[:2], rules.margin)
    x0, y0, x1, y1 = cb
    crop = frame[y0:y1, x0:x1].copy()
    crop[~inst.mask[y0:y1, x0:x1]] = np.asarray(rules.background, np.uint8)
    return crop, cb


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def extract_ids(frame: np.ndarray, instances: Sequence[Instance], rules: IdRules) -> tuple[list[np.ndarray], list[dict], dict]:
    """Crops of the usable instances of one frame, their provenance rows, and the dropped counts."""
    kept, dropped = select_instances(instances, frame.shape[:2], rules)
    h, w = frame.shape[:2]
    crops, rows = [], []
    for n, inst in enumerate(kept):
        crop, cb = crop_instance(frame, inst, rules)
        crops.append(crop)
        row = {"member": f"ref_{n:02d}.png", **inst.to_dict(), "area_frac": round(inst.area / (h * w), 5),
               "crop_box": list(cb), "crop_size": [int(crop.shape[1]), int(crop.shape[0])]}
        rows.append(row)
    return crops, rows, dropped
