"""Reference stages: ``id_refs`` (mi2v ID crops) and ``edit_refs`` (edit reference video + mask).

``id_refs`` (after ``split``; it needs no HR, so put it before ``extract`` and clips
without a usable ID are rejected before they are encoded)::

    - stage: id_refs
      segmenter: {backend: mask2former, model: facebook/mask2former-swin-large-coco-panoptic}
      min_gap_s: 1.0        # reference frame at least this far outside the clip's span
      min_area: 0.01        # instances smaller than this fraction of the frame are dropped (the opencv
                            # segmenter also looks for people down to this size)
      max_ids: 3            # ref_00.png ... ref_02.png, largest first
      margin: 0.1
      num_gpus: 1

For each clip it picks a frame of the source outside the clip's span (random among
those at least ``min_gap_s`` away, seeded by the clip id; ``tries`` frames are tried in
turn until one has a usable ID), segments it, and stores each kept instance's crop at
the source's resolution with the background set to ``background``. Provenance goes
to ``refs`` in the sample json: the frame (timeline index, time, approximate source
frame number, gap, fallback), every crop's box, crop box, area, score and detector,
what was dropped and why, the earlier tries, and the segmenter. Rejects:
``no_id`` (no usable instance in any tried frame), ``no_reference_frame``.

``edit_refs`` (after ``extract``: it works on the decoded HR)::

    - stage: edit_refs
      segmenter: {backend: mask2former, model: ..., classes: [person, animals, car]}
      method: random        # inpaint (object removed) | recolor | random (per clip)
      dilate: 0.01          # mask grown by this fraction of the frame's shorter side

It segments every HR frame, chooses an object (a local region: ``min_area`` to
``max_area`` of the frame), tracks it by mask IoU, dilates the masks and writes
``ref.mp4`` (the HR outside the mask, edited inside) and ``mask.mp4`` (255 inside,
lossless). ``refs`` in the json records the object, the track (matched frames, IoUs),
the dilation, the method and its parameters; ``ref`` and ``mask`` describe the
videos. Rejects: ``no_object``, ``lost_track``.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from .. import media
from ..records import Record
from ..refs import edit as editlib
from ..refs import idrefs
from ..refs.backends import make_segmenter
from ..refs.segment import Mask2FormerConfig, SegmenterConfig
from .base import Stage, StageConfig
from .extract import encode_hr


def clip_rng(seed: int, key: str, salt: str) -> np.random.Generator:
    """A clip's own random stream: reruns make the same choices."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{seed}:{salt}:{key}".encode()).digest()[:8], "little"))


class IdRefsConfig(StageConfig):
    stage: Literal["id_refs"] = "id_refs"
    segmenter: SegmenterConfig = Field(default_factory=Mask2FormerConfig, description="mask2former or opencv")
    batch_size: int = Field(4, ge=1, description="clips per call (one reference frame each per try)")
    min_gap_s: float = Field(1.0, ge=0, description="seconds between the reference frame and the clip's span")
    max_gap_s: float | None = Field(None, ge=0, description="at most this far from the span (default: anywhere)")
    pick: Literal["random", "nearest"] = Field("random", description="random eligible frame, or nearest first")
    tries: int = Field(3, ge=1, le=20, description="reference frames tried before a clip is rejected")
    inside_fallback: bool = Field(True, description="use a frame inside the span when the source has none outside")
    seed: int = 0
    min_area: float = Field(0.01, ge=0, le=1, description="minimum instance area, fraction of the frame")
    max_ids: int = Field(3, ge=1, le=16, description="crops kept per clip, largest first")
    min_score: float = Field(0.0, description="minimum segment score")
    max_overlap: float = Field(0.5, ge=0, le=1, description="mask IoU above which an instance is a duplicate")
    margin: float = Field(0.1, ge=0, le=2, description="box grown by this fraction of its size on each side")
    background: tuple[int, int, int] = Field((255, 255, 255), description="RGB of the masked-out background")

    @field_validator("background")
    @classmethod
    def _rgb(cls, v):
        if any(not 0 <= c <= 255 for c in v):
            raise ValueError("RGB values must be 0..255")
        return v

    def rules(self) -> idrefs.IdRules:
        return idrefs.IdRules(min_area=self.min_area, max_ids=self.max_ids, min_score=self.min_score,
                              max_overlap=self.max_overlap, margin=self.margin, background=tuple(self.background))


def _segmenter_preflight(seg) -> list[str]:
    """A Mask2Former checkpoint that is not on disk stops the job before it starts."""
    if getattr(seg, "backend", None) != "mask2former":
        return []
    from ..refs.mask2former import ModelNotFound, resolve_model

    try:
        resolve_model(seg.model)
    except ModelNotFound as e:
        return [str(e)]
    return []


class IdRefs(Stage):
    name = "id_refs"
    requires = ("split",)
    uses_model = True
    Config = IdRefsConfig
    reproducible = True

    @classmethod
    def preflight(cls, cfg) -> list[str]:
        return _segmenter_preflight(cfg.segmenter)

    def setup(self) -> None:
        self.segmenter = make_segmenter(self.config.segmenter, min_area=self.config.min_area)

    def _picks(self, r: Record) -> list[idrefs.FramePick]:
        cfg: IdRefsConfig = self.config
        fps = r.meta["fps"]
        total = int(math.floor(r.meta["source"]["duration_s"] * fps + 1e-6))
        return idrefs.pick_reference_frames(
            total, r.meta["start_frame"], r.meta["end_frame"], min_gap=math.ceil(cfg.min_gap_s * fps - 1e-9),
            max_gap=None if cfg.max_gap_s is None else math.floor(cfg.max_gap_s * fps + 1e-9), count=cfg.tries,
            strategy=cfg.pick, rng=clip_rng(cfg.seed, r.key, "id_refs"), inside_fallback=cfg.inside_fallback)

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: IdRefsConfig = self.config
        rules = cfg.rules()
        todo: list[tuple[Record, list[idrefs.FramePick], list[dict]]] = []
        done: set[str] = set()
        for r in records:
            picks = self._picks(r)
            if not picks:
                r.rejected(self.name, "no_reference_frame",
                           f"the source has no frame outside the clip's span "
                           f"[{r.meta['start_frame']}, {r.meta['end_frame']}) and inside_fallback is off")
            else:
                todo.append((r, picks, []))
        for attempt in range(cfg.tries):
            round_ = [(r, picks[attempt], tried) for r, picks, tried in todo
                      if r.key not in done and attempt < len(picks)]
            if not round_:
                break
            frames, ok = [], []
            for r, pick, tried in round_:
                src = r.meta["source"]
                t = src["start_time"] + pick.index / r.meta["fps"]
                try:
                    frames.append(media.read_span(r.meta["source_uri"], t, 1, r.meta["fps"])[0])
                    ok.append((r, pick, tried, t))
                except media.MediaError as e:    # e.g. a frame past a short file's real end: try the next
                    tried.append({"index": pick.index, "fallback": pick.fallback, "error": e.detail[:200]})
            found = self.segmenter.segment(frames) if frames else []
            for (r, pick, tried, t), frame, insts in zip(ok, frames, found):
                crops, rows, dropped = idrefs.extract_ids(frame, insts, rules)
                if not crops:
                    tried.append({"index": pick.index, "fallback": pick.fallback, "found": len(insts),
                                  "dropped": dropped})
                    continue
                done.add(r.key)
                self._store(r, pick, t, frame, insts, crops, rows, dropped, tried)
        for r, picks, tried in todo:
            if r.key not in done:
                what = "; ".join(
                    f"frame {a['index']}: " + (a["error"] if "error" in a else
                                               f"{a['found']} found" + (f", dropped {a['dropped']}" if a["dropped"] else ""))
                    for a in tried)
                r.rejected(self.name, "no_id", f"no usable ID in {len(tried)} reference frame(s) ({what})")
        return records

    def _store(self, r: Record, pick: idrefs.FramePick, t: float, frame: np.ndarray, insts: list, crops: list,
               rows: list, dropped, tried: list) -> None:
        cfg: IdRefsConfig = self.config
        for row, crop in zip(rows, crops):
            r.media[row["member"]] = idrefs.png_bytes(crop)
        src, fps = r.meta["source"], r.meta["fps"]
        r.meta["refs"] = {
            "task": "mi2v",
            "segmenter": self.segmenter.describe(),
            "frame": {"index": pick.index, "time_s": round(t, 4),
                      "source_frame": int(round((t - src["start_time"]) * src["fps"])),
                      "gap_frames": pick.gap, "gap_s": round(pick.gap / fps, 4) if pick.gap >= 0 else None,
                      "fallback": pick.fallback, "width": int(frame.shape[1]), "height": int(frame.shape[0])},
            "num_ids": len(rows),
            "ids": rows,
            "found": len(insts),
            "dropped": dropped,
            "tried": tried,
            "rules": {"min_gap_s": cfg.min_gap_s, "max_gap_s": cfg.max_gap_s, "pick": cfg.pick,
                      "min_area": cfg.min_area, "max_ids": cfg.max_ids, "min_score": cfg.min_score,
                      "margin": cfg.margin, "background": list(cfg.background)},
        }

    def replay(self, record: Record, recorded: dict) -> dict[str, str]:
        """The ID crops again from the recorded reference frame (the earlier tries are not re-run)."""
        ref = recorded.get("refs") or {}
        f = ref.get("frame")
        if not f:
            raise ValueError("the sample json has no `refs.frame` (the reference frame of the ID crops)")
        pick = idrefs.FramePick(index=f["index"], gap=f["gap_frames"], fallback=f["fallback"])
        t = record.meta["source"]["start_time"] + pick.index / record.meta["fps"]
        frame = media.read_span(record.meta["source_uri"], t, 1, record.meta["fps"])[0]
        insts = self.segmenter.segment([frame])[0]
        crops, rows, dropped = idrefs.extract_ids(frame, insts, self.config.rules())
        self._store(record, pick, t, frame, insts, crops, rows, dropped, ref.get("tried", []))
        return {}


class EditRefsConfig(StageConfig):
    stage: Literal["edit_refs"] = "edit_refs"
    segmenter: SegmenterConfig = Field(default_factory=Mask2FormerConfig, description="mask2former or opencv")
    seed: int = 0
    min_area: float = Field(0.02, ge=0, le=1, description="smallest object, fraction of the frame (anchor frame)")
    max_area: float = Field(0.4, gt=0, le=1, description="largest object: the edit stays local")
    min_score: float = Field(0.0, description="minimum segment score of the chosen object")
    choose: Literal["largest", "random"] = Field("largest", description="which qualifying object is edited")
    min_iou: float = Field(0.3, ge=0, le=1, description="mask IoU that links an instance to the track")
    propagation: Literal["flow", "hold"] = Field(
        "flow", description="where no instance matches: carry the mask along optical flow, or hold it")
    max_missed: float = Field(0.5, ge=0, le=1, description="fraction of frames the object may go unmatched")
    dilate: float = Field(0.01, ge=0, le=0.5, description="mask dilation, fraction of the frame's shorter side")
    method: Literal["inpaint", "recolor", "random"] = Field("random", description="how the reference is changed")
    inpaint_radius: int = Field(5, ge=1, le=50)
    inpaint_algorithm: Literal["telea", "ns"] = "telea"
    inpaint_work_side: int = Field(512, ge=64, description="inpainting runs at most at this size")
    lossless: bool = Field(False, description="store ref.mp4 losslessly (else H.264 at the HR's settings)")
    crf: int | None = Field(None, ge=0, le=51, description="ref.mp4 quality (default: the HR's)")


class EditRefs(Stage):
    name = "edit_refs"
    requires = ("extract",)
    uses_model = True
    Config = EditRefsConfig
    reproducible = True

    @classmethod
    def preflight(cls, cfg) -> list[str]:
        return _segmenter_preflight(cfg.segmenter)

    def setup(self) -> None:
        self.segmenter = make_segmenter(self.config.segmenter, min_area=self.config.min_area)

    def process_batch(self, records: list[Record]) -> list[Record]:
        clips = [media.decode(r.media["hr.mp4"]) for r in records]
        flat = self.segmenter.segment([f for clip in clips for f in clip])
        at = 0
        for r, frames in zip(records, clips):
            per_frame, at = flat[at:at + len(frames)], at + len(frames)
            self._one(r, frames, per_frame)
        return records

    def replay(self, record: Record, recorded: dict) -> dict[str, str]:
        """The reference video and mask again from the (re-made) HR, with the clip's seed: the same
        object, track, method and edit parameters, which the json comparison checks."""
        self.process_batch([record])
        if not record.ok:
            raise RuntimeError(f"edit_refs now rejects the clip: {record.reject.detail}")
        return {}

    def _one(self, r: Record, frames: np.ndarray, per_frame: list) -> None:
        cfg: EditRefsConfig = self.config
        t_len, h, w = frames.shape[:3]
        rng = clip_rng(cfg.seed, r.key, "edit_refs")
        rules = editlib.ObjectRules(min_area=cfg.min_area, max_area=cfg.max_area, min_score=cfg.min_score,
                                    choose=cfg.choose)
        choice = editlib.choose_object(per_frame, (h, w), rules, rng)
        if choice is None:
            n = sum(len(p) for p in per_frame)
            r.rejected(self.name, "no_object",
                       f"no object between {cfg.min_area:g} and {cfg.max_area:g} of the frame in {t_len} frames "
                       f"({n} instances found)")
            return
        anchor, index = choice
        track = editlib.track_object(per_frame, anchor, index, cfg.min_iou,
                                     frames if cfg.propagation == "flow" else None)
        if track.missed > cfg.max_missed * t_len:
            r.rejected(self.name, "lost_track",
                       f"the {track.label} chosen in frame {anchor} matched in {t_len - track.missed} of {t_len} "
                       f"frames (IoU >= {cfg.min_iou:g}); at most {cfg.max_missed:g} may miss")
            return
        px = max(1, int(round(cfg.dilate * min(h, w)))) if cfg.dilate > 0 else 0
        masks = editlib.dilate_masks(track.masks, px)
        method = cfg.method if cfg.method != "random" else ("inpaint" if rng.random() < 0.5 else "recolor")
        if method == "inpaint":
            params = editlib.InpaintParams(radius=cfg.inpaint_radius, algorithm=cfg.inpaint_algorithm,
                                           work_side=cfg.inpaint_work_side)
        else:
            params = editlib.recolor_params(frames, masks, rng)
        ref = editlib.edit_frames(frames, masks, method, params)
        hr = r.meta.get("hr") or {}
        fps = r.meta["fps"]
        if cfg.lossless:
            r.media["ref.mp4"] = media.encode(ref, fps, lossless=True, threads=media.LOSSLESS_THREADS)
            r.meta["ref"] = {"width": w, "height": h, "frames": t_len, "codec": "libx264rgb", "lossless": True,
                             "threads": media.LOSSLESS_THREADS}
        else:
            settings = {k: hr[k] for k in ("codec", "preset", "threads", "mbtree") if k in hr}
            settings["crf"] = cfg.crf if cfg.crf is not None else hr.get("crf", 18)
            r.media["ref.mp4"] = encode_hr(ref, fps, settings)
            r.meta["ref"] = {"width": w, "height": h, "frames": t_len, "codec": settings.get("codec", "libx264"),
                             "crf": settings["crf"], "preset": settings.get("preset", "medium"), "lossless": False,
                             **{k: settings[k] for k in ("threads", "mbtree") if k in settings}}
        r.media["mask.mp4"] = media.encode(editlib.mask_video(masks), fps, lossless=True,
                                           threads=media.LOSSLESS_THREADS)
        r.meta["mask"] = {"width": w, "height": h, "frames": t_len, "codec": "libx264rgb", "lossless": True,
                          "threads": media.LOSSLESS_THREADS}
        obj = per_frame[anchor][index]
        area = masks.reshape(t_len, -1).mean(axis=1)
        r.meta["refs"] = {
            "task": "edit",
            "segmenter": self.segmenter.describe(),
            "object": {**obj.to_dict(), "anchor_frame": anchor, "area_frac": round(obj.area / (h * w), 5)},
            "track": {"matched": t_len - track.missed, "missed": track.missed, "min_iou": cfg.min_iou,
                      "propagation": track.propagation,
                      "ious": track.ious, "found": track.found},
            "mask": {"dilate_px": px, "area_frac": [round(float(a), 5) for a in area]},
            "method": method,
            "params": asdict(params),
            "rules": {"min_area": cfg.min_area, "max_area": cfg.max_area, "choose": cfg.choose},
        }
