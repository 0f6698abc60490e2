"""Benchmark: the synthetic degradations against the floor and against the reference implementations.

Every path starts from the same encoded HR clip (a span of a real sample video, encoded as the
``extract`` stage does); the floor and datakit's path end with the same lossless LR encode, as
the ``synthetic`` stage does:

* floor:    decode HR -> bicubic resize to HR / scale -> lossless encode;
* datakit:  decode HR -> draw the clip's parameters -> degradation chain -> lossless encode
            (on the CPU; with ``--device cuda`` also the torch path on that device).

The draws are chosen to cover every branch in proportion: from a pool of seeds, a greedy pick
makes the frequencies of the costly branches (noise kind and colour, kernel family and size
class, resize direction and mode, second blur, final order, codecs) follow their probabilities;
the script prints the frequencies it reached. Figures are means over the draws, in CPU seconds of
this process (all threads; OpenCV, BLAS and torch pinned to one thread, as one synthetic task per
CPU runs) and in wall seconds.

The reference implementations run in the same process on the same draws, on the first
``--ref-frames`` frames of ``--ref-draws`` draws (they are slow on a CPU), the degradation chain
only (no decode or encode), against datakit's chain on the same frames:

* ``realesrgan``: Real-ESRGAN's chain (``RealESRNetModel.feed_data``) step by step with BasicSR's
  functions (``USMSharp``, ``filter2D``, ``F.interpolate``, ``add_*_noise_pt``, ``DiffJPEG``) on
  CPU torch, given the drawn parameters (they are written for a GPU: on a CPU the 51x51 USM
  convolution alone takes seconds per 720p frame);
* ``realbasicvsr``: mmagic's transforms (``UnsharpMasking``, ``RandomBlur``, ``RandomResize``,
  ``RandomNoise``, ``RandomJPEGCompression``, ``RandomVideoCompression``) with their ranges pinned
  to the drawn values (their per-frame walks draw their own steps: the same work).

They are loaded from official checkouts (``--basicsr``, ``--mmagic``; see
``tests/data/record_degradation_reference.py``); without them the comparison is skipped and the
output says so.

``--baseline DIR`` also runs the chain of another datakit checkout (e.g. ``git worktree add DIR
COMMIT``) on the same draws, interleaved with the others, as a before/after in one run (the
profiles without variants); the script checks that both make the same LR bytes and says so.

    python bench/bench_degrade.py --height 720 --frames 77 --draws 12 \\
        --basicsr ../BasicSR --mmagic ../mmagic
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")   # before NumPy loads: one synthetic task per CPU

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from datakit import degrade, media  # noqa: E402
from datakit.degrade import LOSSLESS_PRESET  # noqa: E402
from datakit.degrade.chain import degrade as run_chain  # noqa: E402
from datakit.samples import sample_paths  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {   # profile[:variant] -> overrides
    "exact": {"order1": {"noise": {"sampler": "exact"}}, "order2": {"noise": {"sampler": "exact"}}},
    "nousm": {"usm": {"enabled": False}},
    "libjpeg": {"order1": {"jpeg": {"codec": "libjpeg"}}, "final": {"jpeg": {"codec": "libjpeg"}}},
    "veryfast": {"order1": {"video": {"preset": "veryfast"}}, "final": {"video": {"preset": "veryfast"}}},
}


def profile_of(spec: str) -> tuple[str, dict]:
    name, _, variants = spec.partition(":")
    over: dict = {}
    for v in filter(None, variants.split("+")):
        if v not in VARIANTS:
            sys.exit(f"unknown variant {v!r} in {spec!r}; have: {', '.join(VARIANTS)}")
        for k, sub in VARIANTS[v].items():
            over.setdefault(k, {}).update(sub)
    return name, over


# ---- inputs and the floor -----------------------------------------------------------------------

def hr_clip(name: str, frames: int, height: int) -> tuple[bytes, float, tuple[int, int]]:
    path = next((p for p in sample_paths() if p.name == name), None)
    if path is None:
        sys.exit(f"no sample clip {name!r}; have: {', '.join(p.name for p in sample_paths())}")
    info = media.probe(str(path))
    w = round(info.width * height / info.height / 16) * 16
    x = media.read_span(str(path), 0.0, frames, info.fps, size=(w, height))
    return media.encode(x, info.fps, crf=18), info.fps, (w, height)


def measured(fn, *a, **k):
    """``fn``'s result, CPU seconds (this process, all threads) and wall seconds."""
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn(*a, **k)
    return out, time.process_time() - c0, time.perf_counter() - w0


def floor(hr: bytes, fps: float, scale: int) -> None:
    x = media.decode(hr)
    size = (x.shape[2] // scale, x.shape[1] // scale)
    lr = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in x])
    media.encode(lr, fps, lossless=True, preset=LOSSLESS_PRESET)


def ours(hr: bytes, fps: float, params, lr_size, steps: dict, device=None, chain=None) -> np.ndarray:
    x = media.decode(hr)
    lr = (chain or run_chain)(x, params, lr_size, timings=steps, device=device, clock=time.process_time)
    media.encode(lr, fps, lossless=True, preset=LOSSLESS_PRESET)
    return lr


def load_baseline(root: Path):
    """The ``datakit.degrade`` package of another checkout, imported as ``datakit_baseline``."""
    import importlib.util

    init = root / "datakit" / "__init__.py"
    if not init.is_file():
        sys.exit(f"--baseline {root}: no datakit/__init__.py there (give a checkout of this repository)")
    spec = importlib.util.spec_from_file_location("datakit_baseline", init,
                                                  submodule_search_locations=[str(init.parent)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["datakit_baseline"] = pkg
    spec.loader.exec_module(pkg)
    import importlib

    return importlib.import_module("datakit_baseline.degrade")


# ---- draws covering the branches -------------------------------------------------------------------

def branches(p) -> dict:
    """The branch labels of one draw that change its cost."""
    def blur(b):
        if not b.applied:
            return "off"
        return f"{b.family}/{'<=11' if b.size <= 11 else '>11'}"
    o1, o2, f = p.order1, p.order2, p.final
    out = {"order1 noise": f"{o1.noise.kind}{' gray' if o1.noise.gray else ''}",
           "order1 blur": blur(o1.blur), "order1 resize": f"{o1.resize.direction} {o1.resize.mode}",
           "order2 blur": blur(o2.blur), "order2 noise": o2.noise.kind,
           "final": f"{'resize first' if f.resize_first else 'codec first'}, sinc {'on' if f.sinc.applied else 'off'}"}
    if o1.video.applied or f.video.applied:
        out["codecs"] = f"{o1.video.codec or '-'} / {f.video.codec or '-'}"
    return out


def pick_draws(deg, frames: int, lr_size, n: int, pool: int) -> tuple[list[int], dict, dict]:
    """``n`` seeds whose branch frequencies follow the pool's (= the draw probabilities)."""
    labels = [branches(deg.sample(np.random.default_rng(s), frames, lr_size)) for s in range(pool)]
    target = {d: Counter(lb[d] for lb in labels) for d in labels[0]}
    target = {d: {k: v / pool for k, v in c.items()} for d, c in target.items()}
    chosen: list[int] = []
    counts = {d: Counter() for d in target}
    for i in range(n):
        def cost(s):
            return sum((counts[d][k] + (labels[s][d] == k) - (i + 1) * p) ** 2
                       for d in target for k, p in target[d].items())
        best = min((s for s in range(pool) if s not in chosen), key=cost)
        chosen.append(best)
        for d in target:
            counts[d][labels[best][d]] += 1
    return chosen, target, counts


# ---- the reference implementations on the same draws --------------------------------------------------

def load_references(basicsr: Path | None, mmagic: Path | None) -> dict:
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    import record_degradation_reference as rec

    refs = {}
    if basicsr:
        refs["realesrgan"] = rec.load_basicsr(basicsr)
    if mmagic:
        refs["realbasicvsr"] = rec.load_mmagic(mmagic)
    return refs


def esrgan_reference(mods, frames: np.ndarray, p, target) -> np.ndarray:
    """Real-ESRGAN's feed_data, step by step with BasicSR's functions and the drawn parameters."""
    import torch
    import torch.nn.functional as F

    deg, ipu, dj = mods
    mode = {"torch_area": "area"}.get

    def kernel(b):
        return torch.as_tensor(b.kernels()[0], dtype=torch.float32)[None]

    def noise(out, nz):   # per-sample tensors, as random_add_*_noise_pt pass them
        n = out.shape[0]
        gray = torch.full((n,), float(nz.gray))
        if nz.kind == "gaussian":
            return deg.add_gaussian_noise_pt(out, sigma=torch.full((n,), nz.sigma[0]), gray_noise=gray, clip=True)
        return deg.add_poisson_noise_pt(out, scale=torch.full((n,), nz.poisson_scale[0]), gray_noise=gray, clip=True)

    jpeger = dj.DiffJPEG(differentiable=False)

    def filter2d(v, b):   # (current torch keeps DiffJPEG's permuted layout through F.pad; filter2D views it)
        return ipu.filter2D(v.contiguous(), kernel(b))

    with torch.no_grad():
        out = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous().float() / 255
        b = out.shape[0]
        if p.usm.applied:
            out = ipu.USMSharp()(out)
        o1, o2, f = p.order1, p.order2, p.final
        if o1.blur.applied:
            out = filter2d(out, o1.blur)
        out = F.interpolate(out, scale_factor=o1.resize.scale[0], mode=mode(o1.resize.mode, o1.resize.mode))
        out = noise(out, o1.noise)
        out = jpeger(out.clamp(0, 1), quality=torch.full((b,), o1.jpeg.quality[0]))
        if o2.blur.applied:
            out = filter2d(out, o2.blur)
        size = (int(target[1] * o2.resize.scale[0]), int(target[0] * o2.resize.scale[0]))
        out = F.interpolate(out, size=size, mode=mode(o2.resize.mode, o2.resize.mode))
        out = noise(out, o2.noise)

        def resize_sinc(v):
            v = F.interpolate(v, size=(target[1], target[0]), mode=mode(f.mode, f.mode))
            return filter2d(v, f.sinc) if f.sinc.applied else v

        def jpeg(v):
            return jpeger(v.clamp(0, 1), quality=torch.full((b,), f.jpeg.quality[0]))

        out = jpeg(resize_sinc(out)) if f.resize_first else resize_sinc(jpeg(out))
        return (out * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def rbvsr_reference(mods, frames: np.ndarray, p, target) -> list:
    """mmagic's transforms with their ranges pinned to the drawn values."""
    rd, bk, ap = mods
    imgs = list(frames)
    o1, o2, f = p.order1, p.order2, p.final

    def blur(imgs, b):
        if not b.applied:
            return imgs
        v = lambda t: [t[0], t[0]] if t else [0.0, 0.0]   # noqa: E731
        params = dict(kernel_list=[b.family], kernel_prob=[1], kernel_size=[b.size], sigma_x=v(b.sigma_x),
                      sigma_y=v(b.sigma_y or b.sigma_x), rotate_angle=v(b.theta or (0.0,)),
                      beta_gaussian=v(b.beta or (1.0,)), beta_plateau=v(b.beta or (1.0,)), omega=v(b.omega or (1.0,)))
        return rd.RandomBlur(params, keys=["img"])._apply_random_blur(imgs)

    def resize(imgs, r, base):
        h, w = int(base[1] * r.scale[0]) // 2 * 2, int(base[0] * r.scale[0]) // 2 * 2
        return rd.RandomResize(dict(target_size=(h, w), resize_opt=[r.mode], resize_prob=[1]),
                               keys=["img"])._random_resize(imgs)

    def noise(imgs, nz):
        params = dict(noise_type=[nz.kind], noise_prob=[1], gaussian_sigma=[nz.sigma[0]] * 2 if nz.sigma else [1, 1],
                      gaussian_gray_noise_prob=float(nz.gray),
                      poisson_scale=[nz.poisson_scale[0]] * 2 if nz.poisson_scale else [1, 1],
                      poisson_gray_noise_prob=float(nz.gray))
        return rd.RandomNoise(params, keys=["img"])._apply_random_noise(imgs)

    def jpeg(imgs, jp):
        q = jp.quality[0]
        return rd.RandomJPEGCompression(dict(quality=[q, q]), keys=["img"])._apply_random_compression(imgs)

    def video(imgs, v):
        return rd.RandomVideoCompression(dict(codec=[v.codec], codec_prob=[1], bitrate=[v.bitrate, v.bitrate]),
                                         keys=["img"])._apply_random_compression(imgs)

    if p.usm.applied:
        imgs = ap.UnsharpMasking(kernel_size=51, sigma=0, weight=0.5, threshold=10, keys=["gt"])._unsharp_masking(imgs)
    base = (frames.shape[2], frames.shape[1])
    imgs = video(jpeg(noise(resize(blur(imgs, o1.blur), o1.resize, base), o1.noise), o1.jpeg), o1.video)
    cur = (imgs[0].shape[1], imgs[0].shape[0])
    imgs = jpeg(noise(resize(blur(imgs, o2.blur), o2.resize, cur), o2.noise), o2.jpeg)

    def resize_sinc(imgs):
        imgs = rd.RandomResize(dict(target_size=(target[1], target[0]), resize_opt=[f.mode], resize_prob=[1]),
                               keys=["img"])._random_resize(imgs)
        return blur(imgs, f.sinc)

    imgs = video(resize_sinc(imgs), f.video) if f.resize_first else resize_sinc(video(imgs, f.video))
    return [np.clip(i, 0, 255) for i in imgs]


REFERENCE_RUNNERS = {"realesrgan": esrgan_reference, "realbasicvsr": rbvsr_reference}


def time_paths(args, hr, fps, lr_size, draws, run, baseline=None) -> None:
    """The floor and datakit's paths on every draw, interleaved (other load hits them alike)."""
    paths = [(spec, None, False) for spec in args.profiles]
    if baseline is not None:
        paths += [(spec, None, True) for spec in args.profiles if ":" not in spec]   # variants: no baseline
    if args.device:
        paths += [(spec, args.device, False) for spec in args.profiles]
    per = {p: {"cpu": [], "wall": [], "steps": []} for p in paths}
    same = {spec: [] for spec in args.profiles if ":" not in spec}
    base = []
    for i in range(args.draws):
        base.append(measured(floor, hr, fps, args.scale)[1:])
        lrs = {}
        for spec, dev, old in paths:
            deg, seeds, _, _ = draws[spec]
            chain = None
            if old:
                name, over = profile_of(spec)
                deg, chain = baseline.make(name, args.scale, over), baseline.chain.degrade
            params = deg.sample(np.random.default_rng(seeds[i]), args.frames, lr_size)
            steps: dict = {}
            lr, c, w = measured(ours, hr, fps, params, lr_size, steps, dev, chain)
            if dev is None:
                lrs.setdefault(spec, []).append(lr)
            per[(spec, dev, old)]["cpu"].append(c)
            per[(spec, dev, old)]["wall"].append(w)
            per[(spec, dev, old)]["steps"].append(steps)
        if baseline is not None:
            for spec in same:
                new, old = lrs[spec]
                same[spec].append(bool(new.shape == old.shape and np.array_equal(new, old)))
        print(f"  draw {i + 1}/{args.draws} done (load average {os.getloadavg()[0]:.1f})", file=sys.stderr)
    bc, bw = mean([c for c, _ in base]), mean([w for _, w in base])
    print("| path | CPU s per clip | ratio (CPU) | wall s per clip | ratio (wall) |\n|---|---:|---:|---:|---:|")
    print(f"| floor (decode, bicubic resize, lossless encode) | {bc:.2f} | 1.00 | {bw:.2f} | 1.00 |")
    run["floor"] = {"cpu_s": bc, "wall_s": bw}
    for (spec, dev, old), r in per.items():
        c, w = mean(r["cpu"]), mean(r["wall"])
        label = spec + (f" on {dev}" if dev else "") + (f" (baseline {args.baseline})" if old else "")
        print(f"| {label} | {c:.2f} | {c / bc:.2f} | {w:.2f} | {w / bw:.2f} |")
        keys = sorted({k for s in r["steps"] for k in s}, key=lambda k: -sum(s.get(k, 0) for s in r["steps"]))
        steps = {k: sum(s.get(k, 0.0) for s in r["steps"]) / len(r["steps"]) for k in keys}
        run["profiles"][label] = {"cpu_s": c, "wall_s": w, "cpu_ratio": c / bc, "wall_ratio": w / bw,
                                  "steps_cpu_s": steps, "seeds": draws[spec][1]}
    if baseline is not None:
        print("\nthe same LR bytes as the baseline, per draw: " + "; ".join(
            f"{spec} {sum(v)}/{len(v)}" for spec, v in same.items()))
        run["same_bytes_as_baseline"] = {spec: v for spec, v in same.items()}
    for spec in args.profiles:
        _, seeds, target, counts = draws[spec]
        print(f"\n{spec}: branch frequencies of the {args.draws} draws (probability -> drawn)")
        for d in target:
            print(f"  {d}: " + ", ".join(f"{k} {p:.2f}->{counts[d][k] / args.draws:.2f}"
                                        for k, p in sorted(target[d].items(), key=lambda kv: -kv[1])))
    print("\nwhere the CPU time goes (seconds per clip, mean over the draws; decode + encode outside)")
    for label, r in run["profiles"].items():
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(r["steps_cpu_s"].items())[:10])
        print(f"  {label}: {top}")


def compare_references(args, refs, hr, lr_size, draws, run) -> None:
    """The reference implementations and datakit's chain on the same draws and frames (chain only)."""
    print(f"\nreference implementations, chain only, {args.ref_frames} frames x {args.ref_draws} draws "
          f"(CPU s per frame):")
    x = media.decode(hr)[:args.ref_frames]
    run["reference"] = {}
    for spec in args.profiles:
        name, _ = profile_of(spec)
        if name not in REFERENCE_RUNNERS:
            continue
        if name not in refs:
            flag = "--basicsr" if name == "realesrgan" else "--mmagic"
            print(f"  {spec}: no reference checkout given ({flag} PATH): comparison not run")
            continue
        deg, seeds, _, _ = draws[spec]
        mine, theirs = [], []
        for s in seeds[:args.ref_draws]:
            p = deg.sample(np.random.default_rng(s), args.ref_frames, lr_size)
            mine.append(measured(run_chain, x, p, lr_size)[1] / args.ref_frames)
            theirs.append(measured(REFERENCE_RUNNERS[name], refs[name], x, p, lr_size)[1] / args.ref_frames)
        m, t = mean(mine), mean(theirs)
        print(f"  {spec}: datakit {m:.3f}, reference {t:.3f}: datakit {t / m:.1f}x faster")
        run["reference"][spec] = {"datakit_cpu_s_per_frame": m, "reference_cpu_s_per_frame": t}


# ---- main ------------------------------------------------------------------------------------------

def mean(v):
    return statistics.mean(v) if v else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default="bigbuckbunny.mp4", help="sample clip name (datakit.samples)")
    ap.add_argument("--height", type=int, nargs="+", default=[720], help="HR heights (e.g. 720 1080)")
    ap.add_argument("--frames", type=int, default=77)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--draws", type=int, default=12, help="draws per profile, chosen to cover the branches")
    ap.add_argument("--pool", type=int, default=1500, help="seeds the draws are chosen from")
    ap.add_argument("--profiles", nargs="+", default=["realesrgan", "realbasicvsr"],
                    help=f"profiles, optionally with variants: NAME[:VARIANT+...], variants {', '.join(VARIANTS)}")
    ap.add_argument("--device", default=None, help="also run the torch path on this device (e.g. cuda)")
    ap.add_argument("--basicsr", type=Path, help="checkout of XPixelGroup/BasicSR (realesrgan reference)")
    ap.add_argument("--mmagic", type=Path, help="checkout of open-mmlab/mmagic (realbasicvsr reference)")
    ap.add_argument("--ref-draws", type=int, default=4, help="draws the references run on")
    ap.add_argument("--ref-frames", type=int, default=2, help="frames the references run on")
    ap.add_argument("--no-main", action="store_true", help="only the reference comparison")
    ap.add_argument("--baseline", type=Path, help="another datakit checkout whose chain also runs on the same "
                                                  "draws (before/after in one run; outputs compared)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    refs = load_references(args.basicsr, args.mmagic) if (args.basicsr or args.mmagic) else {}
    baseline = load_baseline(args.baseline) if args.baseline else None
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    if args.device and torch is not None and torch.cuda.is_available():
        machine += f", {torch.cuda.get_device_name(0)}"
    results = {"machine": machine, "clip": args.clip, "frames": args.frames, "scale": args.scale,
               "load_avg_start": os.getloadavg(), "runs": {}}
    print(f"{args.clip}, {args.frames} frames, x{args.scale}, {args.draws} draws per profile, {machine}; "
          f"load average at the start {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for height in args.height:
        hr, fps, size = hr_clip(args.clip, args.frames, height)
        lr_size = (size[0] // args.scale, size[1] // args.scale)
        floor(hr, fps, args.scale)   # warm-up
        run = {"hr": list(size), "profiles": {}}
        print(f"\n### {size[0]}x{size[1]} -> {lr_size[0]}x{lr_size[1]}\n")
        draws = {}
        for spec in args.profiles:
            name, over = profile_of(spec)
            deg = degrade.make(name, args.scale, over)
            seeds, target, counts = pick_draws(deg, args.frames, lr_size, args.draws, args.pool)
            draws[spec] = (deg, seeds, target, counts)
        if not args.no_main:
            time_paths(args, hr, fps, lr_size, draws, run, baseline)
        compare_references(args, refs, hr, lr_size, draws, run)
        results["runs"][f"{size[0]}x{size[1]}"] = run
    results["load_avg_end"] = os.getloadavg()
    print(f"\nload average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
