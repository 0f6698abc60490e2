"""Mask2Former segmenter (``Mask2FormerForUniversalSegmentation``), weights from disk only.

A checkpoint directory holds the model (``config.json`` + weights) and its image
processor (``preprocessor_config.json``), as ``save_pretrained`` writes them or as the
hub's ``facebook/mask2former-*`` repositories ship them. Classes are looked up by
name in ``config.label2id`` (``person``; ``animals`` expands to the COCO animals the
checkpoint has; ``*`` keeps every class). Panoptic checkpoints are post-processed
into non-overlapping segments, instance checkpoints into (possibly overlapping)
binary masks.

Frames are batched only with frames of the same size, and the mask logits are cut
back to the frame's own area (the processor pads to a multiple of 32) before
post-processing, so masks line up with the frame and do not depend on the batch.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np

from ..scoring.weights import ModelDir
from .segment import ANIMALS, Instance, Mask2FormerConfig, Segmenter, instance_from_mask


class ModelNotFound(FileNotFoundError):
    """A checkpoint is not on disk; the message says where it was looked for."""


def candidate_dirs(model: str) -> list[Path]:
    """Where ``model`` is looked for, in order (the HF cache is searched after these)."""
    return ModelDir("Mask2Former checkpoint", model).candidates()


def resolve_model(model: str) -> Path:
    """The local directory of a checkpoint: a path, ``$DATAKIT_MODELS/<id>``, or the HF cache (offline)."""
    md = ModelDir("Mask2Former checkpoint", model)
    found = md.find()
    if found is None:
        raise ModelNotFound(md.message())
    return found


def class_ids(label2id: dict, classes: Sequence[str]) -> dict[int, str]:
    """Class id -> name for the wanted ``classes`` (``animals``, ``*`` expand); raises if one is unknown."""
    by_name = {str(k).lower(): int(v) for k, v in label2id.items()}
    out: dict[int, str] = {}
    for c in classes:
        if c == "*":
            out.update({v: k for k, v in by_name.items()})
        elif c == "animals":
            out.update({by_name[a]: a for a in ANIMALS if a in by_name})
        elif c in by_name:
            out[by_name[c]] = c
        else:
            some = ", ".join(sorted(by_name)[:12])
            raise ValueError(f"the checkpoint has no class {c!r} (its classes include {some}, ...)")
    if not out:
        raise ValueError(f"none of the classes {list(classes)} is in the checkpoint")
    return out


class Mask2FormerSegmenter(Segmenter):
    backend = "mask2former"

    def __init__(self, config: Mask2FormerConfig):
        self.config = config
        self.path = resolve_model(config.model)        # before the slow imports: a missing checkpoint fails fast
        import torch
        from transformers import Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor

        if config.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            self.device = config.device
        dtype = torch.float16 if config.half and self.device.startswith("cuda") else torch.float32
        self.model = Mask2FormerForUniversalSegmentation.from_pretrained(
            str(self.path), local_files_only=True, dtype=dtype).to(self.device).eval()
        self.processor = Mask2FormerImageProcessor.from_pretrained(str(self.path), local_files_only=True)
        if config.shortest_edge:
            size = dict(self.processor.size or {})
            old_short = size.get("shortest_edge") or 800
            if size.get("longest_edge"):
                size["longest_edge"] = max(config.shortest_edge,
                                           round(size["longest_edge"] * config.shortest_edge / old_short))
            size["shortest_edge"] = config.shortest_edge
            self.processor.size = size
        self.dtype = dtype
        self.ids = class_ids(self.model.config.label2id, config.classes)
        self._torch = torch

    def describe(self) -> dict:
        c = self.config
        return {"backend": self.backend, "model": c.model, "path": str(self.path), "mode": c.mode,
                "classes": sorted(self.ids.values()), "threshold": c.threshold,
                "mask_threshold": c.mask_threshold, "overlap_mask_area_threshold": c.overlap_mask_area_threshold,
                "device": self.device}

    def _post(self, out, i: int, valid_hw: tuple[int, int], padded_hw: tuple[int, int], size: tuple[int, int]):
        """Post-process frame ``i`` of a batch with its logits cut to its unpadded area."""
        logits = out.masks_queries_logits[i:i + 1].float()
        lh, lw = logits.shape[-2:]
        ch = max(1, int(np.ceil(valid_hw[0] * lh / padded_hw[0])))
        cw = max(1, int(np.ceil(valid_hw[1] * lw / padded_hw[1])))
        one = SimpleNamespace(class_queries_logits=out.class_queries_logits[i:i + 1].float(),
                              masks_queries_logits=logits[..., :ch, :cw])
        c = self.config
        if c.mode == "panoptic":
            r = self.processor.post_process_panoptic_segmentation(
                one, threshold=c.threshold, mask_threshold=c.mask_threshold,
                overlap_mask_area_threshold=c.overlap_mask_area_threshold, label_ids_to_fuse=set(),
                target_sizes=[size])[0]
            seg = r["segmentation"].cpu().numpy()
            return [(seg == s["id"], s) for s in r["segments_info"]]
        r = self.processor.post_process_instance_segmentation(
            one, threshold=c.threshold, mask_threshold=c.mask_threshold,
            overlap_mask_area_threshold=c.overlap_mask_area_threshold, target_sizes=[size],
            return_binary_maps=True)[0]
        if not r["segments_info"]:
            return []
        maps = r["segmentation"].cpu().numpy() > 0
        return [(maps[k], s) for k, s in enumerate(r["segments_info"])]

    def segment(self, frames: Sequence[np.ndarray]) -> list[list[Instance]]:
        """Frames are batched with others of the same size only, so no frame is padded to a
        neighbour's size and its result does not depend on what else is in the batch."""
        results: list[list[Instance] | None] = [None] * len(frames)
        groups: dict[tuple, list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(tuple(f.shape), []).append(i)
        bs = self.config.batch_size
        for idx in groups.values():
            for b in range(0, len(idx), bs):
                part = idx[b:b + bs]
                for i, insts in zip(part, self._segment_batch([frames[i] for i in part])):
                    results[i] = insts
        return results  # type: ignore[return-value]

    def _segment_batch(self, frames: Sequence[np.ndarray]) -> list[list[Instance]]:
        torch = self._torch
        chunk = [np.ascontiguousarray(f) for f in frames]
        inputs = self.processor(images=chunk, return_tensors="pt")
        pv = inputs["pixel_values"].to(self.device, self.dtype)
        pm = inputs.get("pixel_mask")
        with torch.inference_mode():
            out = self.model(pixel_values=pv, pixel_mask=pm.to(self.device) if pm is not None else None)
        padded = tuple(pv.shape[-2:])
        results = []
        for i, f in enumerate(chunk):
            valid = (int(pm[i].any(dim=1).sum()), int(pm[i].any(dim=0).sum())) if pm is not None else padded
            insts = []
            for mask, info in self._post(out, i, valid, padded, f.shape[:2]):
                label = self.ids.get(int(info["label_id"]))
                if label is None:
                    continue
                inst = instance_from_mask(mask, label, float(info["score"]), "mask2former")
                if inst is not None:
                    insts.append(inst)
            results.append(insts)
        return results
