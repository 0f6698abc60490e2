"""Calibrate a filter profile on real footage and variants of it: what is kept, what is not, why.

    python -m datakit.scoring.calibrate [--pipeline pipelines/demo.yaml] [--profile filters/offline.yaml]

Writes the sources of :func:`calibration_sources` (the bundled clips, ordinary footage of
other kinds made from them and from scikit-image's photographs, and defective copies),
runs the pipeline's probe, split, extract and score stages on them in this process, applies
the profile and prints, per source, the clips kept and the reject reasons, then every
score's range over the sources a profile should keep and over the defective ones. A
threshold belongs between the two. filters/offline.yaml was set this way.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import media
from ..samples import sample_paths
from . import variants


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    keep: bool            # ordinary footage (a profile should keep some of its clips) or a defect
    what: str


def _read(path: Path, start: float, seconds: float, fps: float | None = None) -> tuple[np.ndarray, float]:
    info = media.probe(str(path))
    fps = fps or info.fps
    return media.read_span(str(path), info.start_time + start, int(seconds * fps), fps), fps


def _write(dest: Path, name: str, frames: np.ndarray, fps: float) -> Path:
    p = dest / f"{name}.mp4"
    p.write_bytes(media.encode(frames, fps, crf=18, preset="fast"))
    return p


def calibration_sources(dest: str | Path, only: set[str] | None = None) -> list[Source]:
    """Write the calibration sources into ``dest`` (``only``: just these names)."""
    from skimage import data

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    clips = {p.name.split(".")[0].split("_")[0]: p for p in sample_paths()}      # bikes, carphone, bigbuckbunny
    out: list[Source] = []

    def add(name, keep, what, make):
        if only is None or name in only:
            frames, fps = make()
            out.append(Source(name, _write(dest, name, frames, fps), keep, what))

    for short, p in clips.items():
        if only is None or short in only:
            out.append(Source(short, p, True, "bundled real clip"))
    # ordinary footage of other kinds
    add("indoor_dim", True, "a man indoors (carphone), under-lit: gain 0.55, gamma 1.5, sensor noise",
        lambda: (variants.dim(_read(clips["carphone"], 0, 4)[0]), 29.97))
    add("indoor_dimmer", True, "the same, darker: gain 0.45, gamma 1.7",
        lambda: (variants.dim(_read(clips["carphone"], 0, 4)[0], variants.DimParams(gain=0.45, gamma=1.7)), 29.97))

    def street(fps, t0=5.6, t1=7.4, box=(0, 0, 480, 272)):
        frames, src_fps = _read(clips["bikes"], t0, t1 - t0)
        return variants.resample(variants.static_crop(frames, box), src_fps, fps), fps

    add("street_static_10fps", True, "static camera on a street with traffic (bikes), 10 fps", lambda: street(10))
    add("street_static_12fps", True, "the same at 12.5 fps", lambda: street(12.5))
    add("street_static_15fps", True, "the same at 15 fps", lambda: street(15))
    add("cyclist_static_10fps", True, "static camera, a cyclist waiting (bikes), 10 fps",
        lambda: street(10, 3.2, 5.4, (96, 0, 640, 272)))
    add("street_dim_12fps", True, "the static street under-lit, 12.5 fps",
        lambda: (variants.dim(street(12.5)[0]), 12.5))
    add("astronaut_pan_12fps", True, "a slow pan over a photograph of a person (scikit-image), 12 fps",
        lambda: (variants.pan(data.astronaut(), 36, (448, 256), 1.5), 12.0))
    add("coffee_pan", True, "a slow pan over a photograph (scikit-image coffee), 25 fps",
        lambda: (variants.pan(data.coffee(), 50, (400, 224), 0.8), 25.0))
    # defects
    add("blurred", False, "the street clip blurred (sigma 3)", lambda: (variants.blur(street(25)[0]), 25.0))
    add("fade_to_black", False, "the street clip fading to black after 30 %",
        lambda: (variants.fade_to_black(street(25)[0]), 25.0))
    add("frozen", False, "one frame of the street held", lambda: (variants.frozen(street(25)[0]), 25.0))
    add("underexposed", False, "the street at 12 % exposure", lambda: (variants.exposure(street(25)[0], 0.12), 25.0))
    add("overexposed", False, "the street at 300 % exposure", lambda: (variants.exposure(street(25)[0], 3.0), 25.0))
    add("shaky", False, "the street shaking by up to 8 % of the height per frame",
        lambda: (variants.shake(street(25)[0]), 25.0))
    add("blocky", False, "the street from a half-size JPEG (quality 8) upscaled back",
        lambda: (variants.blocky(street(25)[0]), 25.0))
    add("still_noisy", False, "one frame of the street held, with fresh sensor noise in every frame",
        lambda: (variants.dim(variants.frozen(street(25)[0]), variants.DimParams(gain=1.0, gamma=1.0, noise=2.0)),
                 25.0))
    add("slideshow_4fps", False, "the street at 4 fps", lambda: street(4))
    return out


def run_sources(sources: list[Source], pipeline: str, profile: str | None = None) -> dict[str, list]:
    """Each source's clips through the pipeline's probe/split/extract/score stages and the profile's rules.

    Returns ``{source name: [(clip key, reject reason or None, scores), ...]}``; a source
    rejected before scoring gets one row with its reason.
    """
    from .. import spec as specmod
    from ..ingest import list_sources
    from ..stages import STAGES
    from . import profiles

    sp = specmod.load(pipeline)
    stages = [STAGES[c.stage](c) for c in sp.stages if c.stage in ("probe", "split", "extract", "score")]
    filt = next((c for c in sp.stages if c.stage == "filter"), None)
    prof = profiles.load(profile) if profile else profiles.load(filt.profile if filt else "offline")
    for st in stages:
        st.setup()
    out: dict[str, list] = {}
    for src in sources:
        recs = list_sources([str(src.path)])
        for st in stages:
            live = [r for r in recs if r.ok]
            recs = [r for r in recs if not r.ok] + (st.process_batch(live) if live else [])
        rows = []
        for r in recs:
            scores = r.meta.get("scores") or {}
            if not r.ok:
                rows.append((r.key, r.reject.reason, scores))
                continue
            fails = prof.failures(scores)
            rows.append((r.key, fails[0][0] if fails else None, scores))
        out[src.name] = rows
    return out


def report(sources: list[Source], results: dict[str, list]) -> str:
    lines = [f"{'source':<22} {'kind':<9} {'kept':>6}  reject reasons"]
    ranges: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    for s in sources:
        rows = results[s.name]
        kept = sum(r[1] is None for r in rows)
        reasons: dict[str, int] = {}
        for _, reason, scores in rows:
            if reason:
                reasons[reason] = reasons.get(reason, 0) + 1
            for k, v in scores.items():
                ranges[s.keep].setdefault(k, []).append(v)
        lines.append(f"{s.name:<22} {'ordinary' if s.keep else 'defect':<9} {kept:>2}/{len(rows):<3}  "
                     + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    lines.append("")
    lines.append(f"{'score':<16} {'ordinary min..max':>22} {'defects min..max':>22}")
    for k in sorted(set(ranges[True]) | set(ranges[False])):
        cells = []
        for keep in (True, False):
            v = ranges[keep].get(k)
            cells.append(f"{min(v):>10.4g}..{max(v):<10.4g}" if v else f"{'-':>22}")
        lines.append(f"{k:<16} {cells[0]:>22} {cells[1]:>22}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(prog="python -m datakit.scoring.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", default="pipelines/demo.yaml", help="pipeline whose stages make and score clips")
    ap.add_argument("--profile", help="filter profile (default: the pipeline's filter stage's)")
    ap.add_argument("--keep-files", metavar="DIR", help="write the sources here instead of a temporary folder")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sources = calibration_sources(args.keep_files or tmp)
        print(report(sources, run_sources(sources, args.pipeline, args.profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
