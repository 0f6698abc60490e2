"""Offline segmenter on OpenCV 4: detector boxes, GrabCut masks. No weights to download.

Boxes come from the HOG people detector (full bodies; the frame gets a replicated
border so people cut by the frame edge still fit the detector's window) and Haar
cascades (``frontalface_alt2``, whose faces are grown to a head-and-shoulders box;
optionally ``upperbody``; ``frontalcatface_extended`` for cats). Overlapping boxes of
the same object are merged (surest detector first). Each box is then segmented with
``cv2.grabCut`` on the box's neighbourhood, scaled to ``work_side`` pixels; a face's
centre seeds the foreground. When GrabCut keeps too little of the box, the mask falls
back to the ellipse inscribed in it (``mask_method`` records which).

The HOG detector finds people about :data:`HOG_PERSON_HEIGHT` pixels tall or taller in the
image it is given. The frame is scaled (:func:`hog_scale`) so that the smallest person the
caller keeps (``min_area`` of the frame; a person's mask covers up to about
:data:`PERSON_AREA_PER_HEIGHT2` of their height squared) reaches that height: in a wide
1024x576 shot with ``min_area`` 0.005, people about 90 pixels tall are found on a copy
enlarged 1.37 times; in 4K with ``min_area`` 0.01 the frame is shrunk to 0.47, which bounds
the cost.

OpenCV 5 removed HOG and the cascades: datakit pins OpenCV 4.x.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .segment import Instance, OpenCVConfig, Segmenter, instance_from_mask


#: person height (pixels) the default people detector finds reliably: its window is 64x128
#: with the person about 96 pixels tall; a little more keeps the SVM score high
HOG_PERSON_HEIGHT = 112.0
#: mask area / height squared of a person as segmented here: about 0.25 for a slim pedestrian,
#: 0.47 for the bundled cyclist with his bicycle. The wide silhouette sets the scale, so the
#: detector looks for people small enough that no one the area rule keeps is missed.
PERSON_AREA_PER_HEIGHT2 = 0.45
DEFAULT_MIN_AREA = 0.01


def hog_scale(width: int, height: int, min_area: float | None, max_upscale: float = 2.0) -> float:
    """Scale of the frame copy the HOG detector sees so a person covering ``min_area`` of the
    frame is :data:`HOG_PERSON_HEIGHT` pixels tall."""
    area = (DEFAULT_MIN_AREA if min_area is None else min_area) * width * height
    smallest = max(1.0, (area / PERSON_AREA_PER_HEIGHT2) ** 0.5)        # person height, pixels
    return float(min(max_upscale, HOG_PERSON_HEIGHT / smallest))


@dataclass
class _Det:
    label: str
    detector: str
    score: float
    core: tuple[int, int, int, int]     # what the detector found (x0, y0, x1, y1)
    rect: tuple[int, int, int, int]     # the region GrabCut segments


def _clip_box(x0, y0, x1, y1, w, h) -> tuple[int, int, int, int]:
    return max(0, int(round(x0))), max(0, int(round(y0))), min(w, int(round(x1))), min(h, int(round(y1)))


def _overlap_of_smaller(a, b) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    sa = (a[2] - a[0]) * (a[3] - a[1])
    sb = (b[2] - b[0]) * (b[3] - b[1])
    return iw * ih / max(1, min(sa, sb))


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + f"haarcascade_{name}.xml"
    c = cv2.CascadeClassifier(path)
    if c.empty():
        raise RuntimeError(f"OpenCV cascade {path} is missing (OpenCV 4.x with its data files is required)")
    return c


class OpenCVSegmenter(Segmenter):
    backend = "opencv"
    PRIORITY = {"hog": 0, "upperbody": 1, "face": 2, "catface": 3}

    def __init__(self, config: OpenCVConfig):
        self.config = config
        known = {"person", "cat"}
        wanted = set()
        for c in config.classes:
            if c == "animals":
                wanted.add("cat")
            elif c in known:
                wanted.add(c)
            else:
                raise ValueError(f"the opencv segmenter knows classes person and cat (animals), not {c!r}")
        self.classes = sorted(wanted)
        self.hog = None
        self.cascades: dict[str, cv2.CascadeClassifier] = {}
        if "person" in wanted:
            if "hog" in config.detectors:
                self.hog = cv2.HOGDescriptor()
                self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
            if "face" in config.detectors:
                self.cascades["face"] = _cascade("frontalface_alt2")
            if "upperbody" in config.detectors:
                self.cascades["upperbody"] = _cascade("upperbody")
        if "cat" in wanted:
            self.cascades["catface"] = _cascade("frontalcatface_extended")

    def describe(self) -> dict:
        c = self.config
        return {"backend": self.backend, "opencv": cv2.__version__, "classes": self.classes,
                "detectors": list(c.detectors), "hog_threshold": c.hog_threshold,
                "face_neighbors": c.face_neighbors, "min_size": c.min_size,
                "grabcut_iters": c.grabcut_iters, "work_side": c.work_side,
                "min_area": DEFAULT_MIN_AREA if c.min_area is None else c.min_area, "hog_step": c.hog_step}

    # ------------------------------------------------------------ detection

    def _hog(self, frame: np.ndarray) -> list[_Det]:
        h, w = frame.shape[:2]
        scale = hog_scale(w, h, self.config.min_area, self.config.max_upscale)
        if abs(scale - 1.0) < 0.02:
            scale, img = 1.0, frame
        else:
            img = cv2.resize(frame, (round(w * scale), round(h * scale)),
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        py, px = img.shape[0] // 4, img.shape[1] // 8
        img = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_REPLICATE)
        rects, weights = self.hog.detectMultiScale(img, winStride=(8, 8), padding=(16, 16), scale=self.config.hog_step)
        out = []
        for (x, y, bw, bh), s in zip(rects, np.ravel(weights)):
            if s < self.config.hog_threshold:
                continue
            box = _clip_box((x - px) / scale, (y - py) / scale, (x - px + bw) / scale, (y - py + bh) / scale, w, h)
            if box[2] - box[0] >= self.config.min_size and box[3] - box[1] >= self.config.min_size:
                out.append(_Det("person", "hog", float(s), box, box))
        return out

    def _haar(self, gray: np.ndarray, name: str) -> list[_Det]:
        h, w = gray.shape
        c = self.config
        rects, _, weights = self.cascades[name].detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=c.face_neighbors, minSize=(c.min_size, c.min_size),
            outputRejectLevels=True)
        out = []
        for (x, y, bw, bh), s in zip(rects, np.ravel(weights)):
            core = _clip_box(x, y, x + bw, y + bh, w, h)
            if name in ("face", "catface"):      # grow to head and shoulders
                rect = _clip_box(x - 0.6 * bw, y - 0.45 * bh, x + 1.6 * bw, y + 2.4 * bh, w, h)
            else:
                rect = _clip_box(x - 0.1 * bw, y - 0.05 * bh, x + 1.1 * bw, y + 1.3 * bh, w, h)
            out.append(_Det("cat" if name == "catface" else "person", name, float(s), core, rect))
        return out

    def detect(self, frame: np.ndarray) -> list[_Det]:
        """Boxes of one frame, merged across detectors (a face inside a body box is the same person)."""
        dets: list[_Det] = []
        if self.hog is not None:
            dets += self._hog(frame)
        if self.cascades:
            gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
            for name in self.cascades:
                dets += self._haar(gray, name)
        dets.sort(key=lambda d: (self.PRIORITY[d.detector], -d.score))
        kept: list[_Det] = []
        for d in dets:
            if all(_overlap_of_smaller(d.core, k.core) <= self.config.nms_iou
                   and _overlap_of_smaller(d.core, k.rect) <= 0.8 for k in kept):
                kept.append(d)
        return kept

    # ------------------------------------------------------------ masks

    def _grabcut(self, frame: np.ndarray, det: _Det) -> tuple[np.ndarray, str]:
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = det.rect
        bw, bh = x1 - x0, y1 - y0
        # the neighbourhood GrabCut sees: the box plus context for the background model
        rx0, ry0, rx1, ry1 = _clip_box(x0 - 0.3 * bw, y0 - 0.3 * bh, x1 + 0.3 * bw, y1 + 0.3 * bh, w, h)
        region = frame[ry0:ry1, rx0:rx1]
        s = min(1.0, self.config.work_side / max(region.shape[:2]))
        rw, rh = max(1, round(region.shape[1] * s)), max(1, round(region.shape[0] * s))
        small = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA) if s < 1 else np.ascontiguousarray(region)
        gc = np.full((rh, rw), cv2.GC_BGD, np.uint8)
        bx0, by0 = int((x0 - rx0) * s), int((y0 - ry0) * s)
        bx1, by1 = max(bx0 + 1, int(np.ceil((x1 - rx0) * s))), max(by0 + 1, int(np.ceil((y1 - ry0) * s)))
        gc[by0:by1, bx0:bx1] = cv2.GC_PR_FGD
        if det.detector in ("face", "catface"):     # the face's centre is surely the person
            cx0, cy0, cx1, cy1 = det.core
            mx, my = 0.25 * (cx1 - cx0), 0.25 * (cy1 - cy0)
            gc[int((cy0 + my - ry0) * s):int((cy1 - my - ry0) * s) + 1,
               int((cx0 + mx - rx0) * s):int((cx1 - mx - rx0) * s) + 1] = cv2.GC_FGD
        if not (gc == cv2.GC_BGD).any():            # the box fills the frame: the rim is probably background
            gc[[0, -1], :] = cv2.GC_PR_BGD
            gc[:, [0, -1]] = cv2.GC_PR_BGD
        method = "grabcut"
        try:
            cv2.setRNGSeed(0)                       # GrabCut's GMM init uses OpenCV's RNG: be reproducible
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.grabCut(small, gc, None, bgd, fgd, self.config.grabcut_iters, cv2.GC_INIT_WITH_MASK)
            fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
            n, lab, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
            if n > 1:                               # keep the largest blob
                fg = (lab == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
            fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        except cv2.error:
            fg = np.zeros((rh, rw), np.uint8)
        if fg[by0:by1, bx0:bx1].sum() < 0.15 * (by1 - by0) * (bx1 - bx0):
            method = "ellipse"
            fg = np.zeros((rh, rw), np.uint8)
            cv2.ellipse(fg, (((bx0 + bx1) / 2, (by0 + by1) / 2), (bx1 - bx0, by1 - by0), 0), 1, -1)
        full = np.zeros((h, w), bool)
        big = cv2.resize(fg, (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_NEAREST) if s < 1 else fg
        full[ry0:ry1, rx0:rx1] = big.astype(bool)
        return full, method

    def segment_frame(self, frame: np.ndarray) -> list[Instance]:
        frame = np.ascontiguousarray(frame)
        out = []
        for d in self.detect(frame):
            mask, method = self._grabcut(frame, d)
            inst = instance_from_mask(mask, d.label, d.score, d.detector,
                                      det_box=[int(v) for v in d.core], mask_method=method)
            if inst is not None:
                out.append(inst)
        return out

    def segment(self, frames: Sequence[np.ndarray]) -> list[list[Instance]]:
        return [self.segment_frame(f) for f in frames]
