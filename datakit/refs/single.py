"""ID references of one frame, for inspection (``datakit refs IN --frame N -o DIR``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .. import media
from .idrefs import IdRules, extract_ids, png_bytes
from .segment import Instance, Segmenter

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def read_frame(uri: str, index: int) -> tuple[np.ndarray, dict]:
    """Frame ``index`` (the source's own frame numbering) of a video, or an image; and where it came from.

    Raises ``ValueError`` for an index outside the video, ``MediaError`` for unreadable input.
    """
    if Path(uri).suffix.lower() in IMAGE_SUFFIXES:
        if index != 0:
            raise ValueError(f"{uri} is an image: it has only frame 0")
        try:
            img = np.array(Image.open(uri).convert("RGB"))
        except OSError as e:
            raise media.MediaError("unreadable", str(e)) from e
        return img, {"source_uri": uri, "index": 0}
    info = media.probe(uri)
    if not 0 <= index < info.num_frames:
        raise ValueError(f"frame {index} is outside {uri} (frames 0..{info.num_frames - 1})")
    t = info.start_time + index / info.fps
    frame = media.read_span(uri, t, 1, info.fps)[0]
    return frame, {"source_uri": uri, "index": index, "time_s": round(t, 4), "fps": info.fps,
                   "width": info.width, "height": info.height}


def overlay(frame: np.ndarray, instances: Sequence[Instance], kept: Sequence[Instance]) -> np.ndarray:
    """The frame with every instance tinted (kept ones green, dropped ones red) and kept boxes drawn."""
    import cv2

    out = frame.astype(np.float32)
    for inst in instances:
        colour = (0, 200, 0) if any(inst is k for k in kept) else (220, 0, 0)
        out[inst.mask] = 0.55 * out[inst.mask] + 0.45 * np.array(colour, np.float32)
    out = out.astype(np.uint8)
    for n, inst in enumerate(kept):
        x0, y0, x1, y1 = inst.box
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 0), 1)
        cv2.putText(out, f"{n:02d}", (x0 + 2, y0 + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
    return out


def frame_refs(frame: np.ndarray, segmenter: Segmenter, rules: IdRules, out_dir: str | Path,
               where: dict | None = None) -> dict:
    """Segment one frame, write ``ref_NN.png``, ``frame.png``, ``overlay.png`` and ``refs.json``; return the json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    instances = segmenter.segment([frame])[0]
    crops, rows, dropped = extract_ids(frame, instances, rules)
    for row, crop in zip(rows, crops):
        (out / row["member"]).write_bytes(png_bytes(crop))
    kept = [i for i in instances if any(i.box == tuple(r["box"]) and i.area == r["area"] for r in rows)]
    (out / "frame.png").write_bytes(png_bytes(frame))
    (out / "overlay.png").write_bytes(png_bytes(overlay(frame, instances, kept)))
    doc = {"frame": where or {}, "segmenter": segmenter.describe(), "found": len(instances),
           "instances": [i.to_dict() for i in instances], "ids": rows, "dropped": dropped,
           "rules": {"min_area": rules.min_area, "max_ids": rules.max_ids, "min_score": rules.min_score,
                     "margin": rules.margin, "background": list(rules.background)}}
    (out / "refs.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc
