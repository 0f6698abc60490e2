"""Benchmark: the synthetic-degradation path against a bare decode / resize / encode.

Both paths start from the same encoded HR clip (a span of a real sample video,
encoded as the ``extract`` stage does) and end with the same lossless LR encode, as
the ``synthetic`` stage does:

* baseline:    decode HR -> resize to HR/scale (bicubic) -> lossless encode
* degradation: decode HR -> draw parameters -> degradation chain -> lossless encode

(the lossless encode uses the synthetic stage's preset). Wall time is what a user
waits; CPU time (this process, all threads) is less sensitive to other load on the
machine, so both are reported.

Each profile runs once per seed (parameters differ per seed: kernel sizes, scales,
codecs), and the mean over seeds is reported with the time of every step.

    python bench/bench_degrade.py --clip bikes.mp4 --frames 77 --seeds 8
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import cv2
import numpy as np

from datakit import degrade, media
from datakit.samples import sample_paths
from datakit.degrade import LOSSLESS_PRESET


def hr_clip(name: str, frames: int, height: int | None) -> tuple[bytes, float]:
    path = next((p for p in sample_paths() if p.name == name), None)
    if path is None:
        sys.exit(f"no sample clip {name!r}; have: {', '.join(p.name for p in sample_paths())}")
    info = media.probe(str(path))
    size = None
    if height:
        w = round(info.width * height / info.height / 16) * 16
        size = (w, height)
    x = media.read_span(str(path), 0.0, frames, info.fps, size=size)
    return media.encode(x, info.fps, crf=18), info.fps


def baseline(hr: bytes, fps: float, scale: int) -> dict:
    t = {}
    t0 = time.perf_counter()
    x = media.decode(hr)
    t["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    size = (x.shape[2] // scale, x.shape[1] // scale)
    lr = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in x])
    t["resize"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    media.encode(lr, fps, lossless=True, preset=LOSSLESS_PRESET)
    t["encode"] = time.perf_counter() - t0
    return t


def degraded(hr: bytes, fps: float, profile: str, scale: int, seed: int,
             overrides: dict | None = None) -> tuple[dict, dict]:
    t = {}
    t0 = time.perf_counter()
    x = media.decode(hr)
    t["decode"] = time.perf_counter() - t0
    d = degrade.make(profile, scale, overrides)
    t0 = time.perf_counter()
    params = d.sample(np.random.default_rng(seed), x.shape[0])
    t["sample"] = time.perf_counter() - t0
    steps: dict = {}
    t0 = time.perf_counter()
    lr = d.apply(x, params, timings=steps) if profile != "bicubic" else d.apply(x, params)
    t["chain"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    media.encode(lr, fps, lossless=True, preset=LOSSLESS_PRESET)
    t["encode"] = time.perf_counter() - t0
    return t, steps


def timed_cpu(fn, *a):
    """``fn(*a)`` and the CPU seconds this process spent in it (all threads)."""
    c0 = time.process_time()
    out = fn(*a)
    return out, time.process_time() - c0


def mean_dicts(ds: list[dict]) -> dict:
    keys = sorted({k for d in ds for k in d}, key=lambda k: -sum(d.get(k, 0) for d in ds))
    return {k: sum(d.get(k, 0.0) for d in ds) / len(ds) for k in keys}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default="bikes.mp4", help="sample clip name (datakit.samples)")
    ap.add_argument("--frames", type=int, default=77)
    ap.add_argument("--height", type=int, default=None, help="HR height (default: the clip's own)")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=8, help="runs per profile, one seed each")
    ap.add_argument("--profiles", nargs="+", default=["realesrgan", "realbasicvsr", "light", "heavy"])
    ap.add_argument("--overrides", type=json.loads, default=None,
                    help='profile overrides as JSON, e.g. \'{"final": {"video": {"preset": "veryfast"}}}\'')
    ap.add_argument("--threads", type=int, default=None, help="OpenCV threads (default: OpenCV's choice)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if args.threads is not None:
        cv2.setNumThreads(args.threads)

    load_start = os.getloadavg()
    hr, fps = hr_clip(args.clip, args.frames, args.height)
    shape = media.decode(hr).shape
    baseline(hr, fps, args.scale)  # warm-up (codec and FFT set-up)
    # interleaved: each seed runs the baseline and every profile back to back, so that
    # other load on the machine hits all paths alike
    base_runs, runs = [], {prof: [] for prof in args.profiles}
    for seed in range(args.seeds):
        base_runs.append(timed_cpu(baseline, hr, fps, args.scale))
        for prof in args.profiles:
            runs[prof].append(timed_cpu(degraded, hr, fps, prof, args.scale, seed, args.overrides))
    base = mean_dicts([r for r, _ in base_runs])
    base_total = statistics.mean(sum(r.values()) for r, _ in base_runs)
    base_cpu = statistics.mean(c for _, c in base_runs)

    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    out = {"clip": args.clip, "frames": shape[0], "hr": [shape[2], shape[1]], "scale": args.scale,
           "seeds": args.seeds, "overrides": args.overrides, "machine": machine, "load_avg_start": load_start,
           "load_avg_end": os.getloadavg(),
           "baseline": {"total_s": base_total, "cpu_s": base_cpu, "steps_s": base}, "profiles": {}}
    print(f"{args.clip}: {shape[0]} frames {shape[2]}x{shape[1]} -> x{args.scale}, "
          f"{args.seeds} seeds, {machine}" + (f", overrides {json.dumps(args.overrides)}" if args.overrides else ""))
    print("\n| path | wall s per clip | ms per frame | ratio (wall) | CPU s per clip | ratio (CPU) |\n"
          "|---|---:|---:|---:|---:|---:|")
    print(f"| baseline (decode, bicubic resize, lossless encode) | {base_total:.2f} | "
          f"{1000 * base_total / shape[0]:.1f} | 1.00 | {base_cpu:.2f} | 1.00 |")
    for prof, pr in runs.items():
        total = statistics.mean(sum(t.values()) for (t, _), _ in pr)
        cpu = statistics.mean(c for _, c in pr)
        out["profiles"][prof] = {"total_s": total, "ratio": total / base_total, "cpu_s": cpu,
                                 "cpu_ratio": cpu / base_cpu,
                                 "parts_s": mean_dicts([t for (t, _), _ in pr]),
                                 "steps_s": mean_dicts([s for (_, s), _ in pr])}
        print(f"| {prof} | {total:.2f} | {1000 * total / shape[0]:.1f} | {total / base_total:.2f} | "
              f"{cpu:.2f} | {cpu / base_cpu:.2f} |")
    print(f"\nload average (1/5/15 min) at the start: {' '.join(f'{v:.2f}' for v in load_start)}, "
          f"at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("where the time goes (wall seconds per clip, mean over seeds)")
    print("baseline: " + ", ".join(f"{k} {v:.3f}" for k, v in base.items()))
    for prof, r in out["profiles"].items():
        print(f"{prof}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["parts_s"].items()))
        print("    chain: " + ", ".join(f"{k} {v:.3f}" for k, v in r["steps_s"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
