"""Record the fingerprints (sha256) of the degradations' outputs, to hold speed work to the same bytes.

    python tests/data/record_degradation_golden.py

Run it at a commit whose outputs are the ones to keep; it writes ``degradation_golden.json`` next
to this script with that commit, the library versions and, for each case, the sha256 of the
output array (its dtype, shape and bytes):

* the chains: every named profile (and the ``exact`` noise samplers, libjpeg instead of
  DiffJPEG), on a few frames of a real sample clip, with seeds picked from a pool so that every
  branch of the draw (order 1 / 2 on or off, kernel family and trimmed size, resize direction and
  mode, noise kind, colour and sampler, JPEG codec, video codec, final order, sinc) occurs at
  least once;
* the operations one by one on a real frame (two sizes), float32 outputs bit for bit (unsharp masking, every
  blur path, every resize mode, every noise kind, unit and sampler, both JPEG codecs, the video
  codecs).

``tests/test_degrade_golden.py`` re-runs every case and compares. A change that alters any of
these bytes is not a speed-up but a change of the output: it then needs its own recorded
choice in the parameters (so that samples recorded before it still re-make), not a new
recording here. The fingerprints hold for the library builds named in the json on x86-64
(OpenCV's and FFmpeg's SIMD paths are chosen at run time; they are bit-exact on the machines
this was recorded and checked on).
"""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from datakit import degrade, media  # noqa: E402
from datakit.degrade import kernels as K  # noqa: E402
from datakit.degrade import ops  # noqa: E402
from datakit.samples import sample_paths  # noqa: E402

#: The chain cases: profile -> overrides.
CHAINS = {
    "realesrgan": {},
    "realesrgan:exact+libjpeg": {"order1": {"noise": {"sampler": "exact"}, "jpeg": {"codec": "libjpeg"}},
                                 "order2": {"noise": {"sampler": "exact"}},
                                 "final": {"jpeg": {"codec": "libjpeg"}}},
    "realbasicvsr": {},
    "realbasicvsr:exact": {"order1": {"noise": {"sampler": "exact"}}, "order2": {"noise": {"sampler": "exact"}}},
    "light": {},
    "heavy": {},
}
SCALE = 4
POOL = 400
MAX_SEEDS = 12
#: A frame size for the operations alone, larger and not a multiple of 8 or 16 (vector tails, padding).
LARGE = (622, 350)


def clip(frames: int = 5, size: tuple[int, int] = (256, 144)) -> np.ndarray:
    """``frames`` frames of the bundled street clip at ``size`` (its motion, edges and textures)."""
    bikes = next(p for p in sample_paths() if p.name == "bikes.mp4")
    return media.read_span(str(bikes), 1.0, frames, 25.0, size=size)


def digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def labels(p) -> set[tuple[str, str]]:
    """Every branch a draw takes (what picks a code path)."""
    out = set()

    def blur(name, b):
        if not b.applied:
            out.add((name, "off"))
            return
        k = b.kernels()[0]
        out.add((name, f"{b.family}"))
        out.add((name, ops.blur_path(k)))

    for name, o in (("order1", p.order1), ("order2", p.order2)):
        out.add((name, "on" if o.applied else "off"))
        if not o.applied:
            continue
        blur(f"{name}.blur", o.blur)
        out.add((f"{name}.resize", f"{o.resize.direction} {o.resize.mode}" if o.resize.applied else "off"))
        nz = o.noise
        out.add((f"{name}.noise", f"{nz.kind} gray={nz.gray} {nz.sampler} {nz.units}" if nz.applied else "off"))
        out.add((f"{name}.jpeg", o.jpeg.codec if o.jpeg.applied else "off"))
        out.add((f"{name}.video", o.video.codec if o.video.applied else "off"))
    f = p.final
    out.add(("final", f"{'resize first' if f.resize_first else 'codecs first'} {f.mode}"))
    blur("final.sinc", f.sinc)
    out.add(("final.jpeg", f.jpeg.codec if f.jpeg.applied else "off"))
    out.add(("final.video", f.video.codec if f.video.applied else "off"))
    return out


def cover(deg, frames: int, lr) -> list[int]:
    """Seeds (greedy, at most ``MAX_SEEDS``) whose draws take as many of the pool's branches as possible."""
    pool = {s: labels(deg.sample(np.random.default_rng(s), frames, lr)) for s in range(POOL)}
    todo = set().union(*pool.values())
    seeds: list[int] = []
    while todo and len(seeds) < MAX_SEEDS:
        best = max(pool, key=lambda s: (len(pool[s] & todo), -s))
        seeds.append(best)
        todo -= pool[best]
    return sorted(seeds)


def chain_cases(x: np.ndarray) -> dict:
    lr = (x.shape[2] // SCALE, x.shape[1] // SCALE)
    out = {}
    for spec, over in CHAINS.items():
        deg = degrade.make(spec.partition(":")[0], SCALE, over)
        seeds = cover(deg, len(x), lr)
        out[spec] = {"overrides": over, "digests": {}}
        for s in seeds:
            p = deg.sample(np.random.default_rng(s), len(x), lr)
            out[spec]["digests"][str(s)] = digest(deg.apply(x, p, lr))
        print(spec, seeds, file=sys.stderr)
    return out


def op_cases(frame: np.ndarray) -> dict:
    """Each operation on a real frame (float32 in, as in a chain after the first step)."""
    f = frame.astype(np.float32)
    g = ops.usm(frame, ops.gaussian_taps(51, 0.0), 0.5, 10.0)      # a float input with fractions
    out = {"usm/uint8": ops.usm(frame, ops.gaussian_taps(51, 0.0), 0.5, 10.0),
           "usm/float": ops.usm(g, ops.gaussian_taps(51, 0.0), 0.5, 10.0),
           "usm/21": ops.usm(frame, ops.gaussian_taps(21, 3.0), 1.0, 5.0)}
    kernels = {"iso13": K.gaussian(13, 2.0), "aniso7": K.make("aniso", 7, 1.0, 0.5, 0.3),
               "aniso21small": K.make("aniso", 21, 0.4, 0.3, 1.0), "aniso21": K.make("aniso", 21, 2.5, 1.2, 0.7),
               "plateau17": K.make("plateau_aniso", 17, 2.0, 0.8, 2.0, 1.5), "sinc13": K.make("sinc", 13, omega=1.2),
               "sinc21": K.make("sinc", 21, omega=0.8), "gen_iso9": K.make("generalized_iso", 9, 1.5, beta=0.7)}
    for name, k in kernels.items():
        out[f"blur/{name}/{ops.blur_path(k)}"] = ops.blur(g, k)
    h, w = f.shape[:2]
    for mode in ops.RESIZE_MODES:
        out[f"resize/{mode}/down"] = ops.resize(g, (w * 2 // 5, h * 3 // 7), mode)
        out[f"resize/{mode}/up"] = ops.resize(g, (w * 5 // 4, h * 6 // 5), mode)
    for sampler in ops.NOISE_SAMPLERS:
        for gray in (False, True):
            out[f"noise/gaussian/{sampler}/{gray}"] = ops.gaussian_noise(g, 7.5, gray, ops.frame_rng(5, 1), sampler)
            for units in ops.POISSON_UNITS:
                out[f"noise/poisson/{sampler}/{units}/{gray}"] = ops.poisson_noise(
                    g, 1.3, gray, ops.frame_rng(6, 2), sampler, units)
    for q in (31, 77.5):
        out[f"jpeg/diffjpeg/{q}"] = ops.diff_jpeg(g, q)
    for q in (31, 90):
        out[f"jpeg/libjpeg/{q}"] = ops.jpeg(g, q)
    return {k: digest(v) for k, v in out.items()}


def video_cases(x: np.ndarray) -> dict:
    lr = (x.shape[2] // SCALE, x.shape[1] // SCALE)
    bits = 8.0 * lr[0] * lr[1]
    return {f"video/{codec}": digest(ops.video_compress(list(x), codec, bits)) for codec in ops.VIDEO_CODECS}


SIMD_FLAGS = ("sse2", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq",
              "avx512vl", "avx512vnni", "avx512_vnni")


def environment() -> dict:
    """What the fingerprints depend on beyond the code: library builds and the CPU's SIMD level
    (OpenCV and libx264 choose their kernels at run time)."""
    import av
    import cv2
    import scipy

    flags: set[str] = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"machine": platform.machine(),
            "versions": {"opencv": cv2.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                         "av": av.__version__},
            "simd": sorted(f for f in SIMD_FLAGS if f in flags)}


def main() -> int:
    x = clip()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    doc = {"commit": commit, **environment(),
           "input": {"clip": "bikes.mp4", "start": 1.0, "frames": len(x), "fps": 25.0,
                     "size": [int(x.shape[2]), int(x.shape[1])]},
           "scale": SCALE, "chains": chain_cases(x), "ops": op_cases(x[2]),
           "ops_large": op_cases(clip(3, LARGE)[2]), "video": video_cases(x)}
    (HERE / "degradation_golden.json").write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
