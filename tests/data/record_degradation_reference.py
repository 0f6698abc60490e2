"""Re-record the degradation reference data in this folder by running the official implementations.

    python tests/data/record_degradation_reference.py --basicsr /path/to/XPixelGroup-BasicSR \\
        --realesrgan /path/to/xinntao-Real-ESRGAN --mmagic /path/to/open-mmlab-mmagic

Runs, on fixed inputs with fixed parameters (or with the reference's own draws logged):

* BasicSR (Real-ESRGAN's library): the kernel functions of ``basicsr/data/degradations.py``,
  ``filter2D`` and ``USMSharp`` / ``usm_sharp`` of ``basicsr/utils/img_process_util.py``,
  ``DiffJPEG`` of ``basicsr/utils/diffjpeg.py``, torch's ``F.interpolate`` as the model calls
  it, and the noise generators (statistics over many fields);
* Real-ESRGAN: ``RealESRNetModel.feed_data`` of ``realesrgan/models/realesrnet_model.py`` (the
  whole second-order chain) with the options of ``options/train_realesrnet_x4plus.yml``, its
  random draws replaced by scripted values and its noise set to sigma 0, so that the LR is a
  deterministic function of the scripted parameters;
* mmagic: ``random_degradations.py`` (RandomBlur / RandomResize / RandomNoise /
  RandomJPEGCompression / RandomVideoCompression / DegradationsWithShuffle, with the settings
  of ``configs/real_basicvsr/realbasicvsr_wogan-c64b20-2x30x8_8xb2-lr1e-4-300k_reds.py``),
  ``blur_kernels.py`` and ``UnsharpMasking`` of ``aug_pixel.py``, logging the values its
  random walks draw and the sizes of the frames after every step.

The packages are not installed: their module files are loaded directly (BasicSR 1.4.2 from
PyPI does not import on current torchvision). Shims stand in for what the loaded files import
and this script does not need (registries, base classes, ``SRModel``, the paired random crop,
which is the identity here). One line of mmagic is patched on load: PyAV >= 14 takes
``frame.pict_type`` as an enum, not the string ``'NONE'``.

Writes ``degradation_reference.npz`` and ``degradation_reference.json`` next to this script.
Not run by the test suite; ``tests/test_degrade_reference.py`` compares datakit with the data.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import random as pyrandom
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MMAGIC_DEG = "mmagic/datasets/transforms/random_degradations.py"


# ---- loading the official files ----------------------------------------------------------------

def _load(name: str, path: Path, source: str | None = None):
    if source is None:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    sys.modules[name] = mod
    exec(compile(source, str(path), "exec"), mod.__dict__)
    return mod


def _package(name: str, **attrs):
    mod = sys.modules.get(name) or types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def load_basicsr(root: Path):
    deg = _load("basicsr.data.degradations", root / "basicsr/data/degradations.py")
    ipu = _load("basicsr.utils.img_process_util", root / "basicsr/utils/img_process_util.py")
    dj = _load("basicsr.utils.diffjpeg", root / "basicsr/utils/diffjpeg.py")
    return deg, ipu, dj


def load_realesrgan(root: Path, deg, ipu, dj):
    registry = types.SimpleNamespace(register=lambda *a, **k: (lambda c: c))
    _package("basicsr")
    _package("basicsr.data", degradations=deg)
    _package("basicsr.data.transforms", paired_random_crop=lambda gt, lq, *a, **k: (gt, lq))  # no crop here
    _package("basicsr.models")
    _package("basicsr.models.sr_model", SRModel=object)
    _package("basicsr.utils", DiffJPEG=dj.DiffJPEG, USMSharp=ipu.USMSharp, img_process_util=ipu)
    _package("basicsr.utils.registry", MODEL_REGISTRY=registry)
    return _load("realesrgan_realesrnet_model", root / "realesrgan/models/realesrnet_model.py")


def load_mmagic(root: Path):
    registry = types.SimpleNamespace(register_module=lambda *a, **k: (lambda c: c))
    _package("mmagic")
    _package("mmagic.registry", TRANSFORMS=registry)
    _package("mmagic.datasets")
    _package("mmcv")
    _package("mmcv.transforms", BaseTransform=object)
    tr = _package("mmagic.datasets.transforms")
    bk = _load("mmagic.datasets.transforms.blur_kernels", root / "mmagic/datasets/transforms/blur_kernels.py")
    tr.blur_kernels = bk
    src = (root / MMAGIC_DEG).read_text()
    old = "frame.pict_type = 'NONE'"
    if old not in src:
        raise SystemExit(f"{MMAGIC_DEG}: the line to patch ({old}) is not there; check the checkout")
    src = src.replace(old, "frame.pict_type = av.video.frame.PictureType.NONE")
    rd = _load("mmagic_random_degradations", root / MMAGIC_DEG, src)
    ap = _load("mmagic_aug_pixel", root / "mmagic/datasets/transforms/aug_pixel.py")
    return rd, bk, ap


def commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---- inputs ------------------------------------------------------------------------------------

def texture(h: int, w: int, seed: int, shift: int = 0) -> np.ndarray:
    """A band-limited colour texture with an edge (uint8), optionally panned by ``shift`` pixels."""
    import cv2

    rng = np.random.default_rng(seed)
    big = rng.uniform(0, 255, (h + 16, w + 16 + 16)).astype(np.float32)
    lum = cv2.GaussianBlur(big, (0, 0), 1.2)
    lum = (lum - lum.mean()) * 2.5
    yy, xx = np.mgrid[0:h + 16, 0:w + 32].astype(np.float32)
    base = np.stack([60 + 120 * xx / (w + 32), 80 + 100 * yy / (h + 16), np.full_like(xx, 120)], -1)
    base[:, (w + 32) // 2:] += 40
    img = np.clip(base + lum[..., None], 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[8:8 + h, 8 + shift:8 + shift + w])


class Logger:
    """Wraps a module attribute (a function) to record its calls' arguments and results."""

    def __init__(self):
        self.calls = []

    def wrap(self, fn, tag):
        def inner(*a, **k):
            out = fn(*a, **k)
            self.calls.append((tag, a, k, out))
            return out
        return inner


class NumpyProxy:
    """Stands in for ``np`` inside a reference module: everything is NumPy, but ``np.random.uniform``
    calls are logged (same generator, same stream)."""

    def __init__(self, log: list):
        self._log = log
        proxy = self

        class _Random:
            def __getattr__(self, name):
                return getattr(np.random, name)

            @staticmethod
            def uniform(low=0.0, high=1.0, size=None):
                v = np.random.uniform(low, high, size)
                proxy._log.append((float(low), float(high), v))
                return v
        self.random = _Random()

    def __getattr__(self, name):
        return getattr(np, name)


# ---- BasicSR / Real-ESRGAN -----------------------------------------------------------------------

KERNEL_CASES = [
    # family, size, sigma_x, sigma_y, theta, beta, omega
    ("iso", 21, 2.0, 2.0, 0.0, 0, 0), ("iso", 7, 0.5, 0.5, 0.0, 0, 0),
    ("aniso", 15, 2.5, 0.7, 0.8, 0, 0), ("aniso", 21, 0.4, 1.9, -2.0, 0, 0),
    ("aniso", 21, 0.3, 0.25, 1.1, 0, 0),
    ("generalized_iso", 13, 1.5, 1.5, 0.0, 0.6, 0), ("generalized_aniso", 21, 2.2, 1.1, 0.3, 3.5, 0),
    ("plateau_iso", 9, 1.2, 1.2, 0.0, 1.3, 0), ("plateau_aniso", 19, 2.9, 0.5, -1.2, 1.9, 0),
    ("sinc", 7, 0, 0, 0, 0, 2.5), ("sinc", 21, 0, 0, 0, 0, 0.8),
]


def basicsr_kernel(deg, family, size, sx, sy, th, beta, omega):
    iso = family in ("iso", "generalized_iso", "plateau_iso")
    if family == "sinc":
        return deg.circular_lowpass_kernel(omega, size, pad_to=0)
    if family in ("iso", "aniso"):
        return deg.bivariate_Gaussian(size, sx, sy, th, isotropic=iso)
    if family.startswith("generalized"):
        return deg.bivariate_generalized_Gaussian(size, sx, sy, th, beta, isotropic=iso)
    return deg.bivariate_plateau(size, sx, sy, th, beta, isotropic=iso)


def mmagic_kernel(bk, family, size, sx, sy, th, beta, omega):
    iso = family in ("iso", "generalized_iso", "plateau_iso")
    if family == "sinc":
        return bk.random_circular_lowpass_kernel([omega, omega], size)
    if family in ("iso", "aniso"):
        return bk.bivariate_gaussian(size, sx, sy, th, is_isotropic=iso)
    if family.startswith("generalized"):
        return bk.bivariate_generalized_gaussian(size, sx, sy, th, beta, is_isotropic=iso)
    return bk.bivariate_plateau(size, sx, sy, th, beta, is_isotropic=iso)


def to_t(img):
    import torch

    return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]


def from_t(t):
    return t[0].permute(1, 2, 0).detach().numpy().astype(np.float32)


def record_basicsr(out: dict, meta: dict, deg, ipu, dj) -> None:
    import torch
    import torch.nn.functional as F

    img = texture(32, 40, 1)
    out["img"] = img
    x01 = img.astype(np.float32) / 255
    # kernels and blur (filter2D: torch conv2d, reflected borders)
    meta["kernels"] = [list(c) for c in KERNEL_CASES]
    for i, case in enumerate(KERNEL_CASES):
        k = basicsr_kernel(deg, *case)
        out[f"kernel/basicsr/{i}"] = k
        kt = torch.from_numpy(np.asarray(k, dtype=np.float32))[None]
        out[f"blur/basicsr/{i}"] = from_t(ipu.filter2D(to_t(x01), kt)) * 255
    # unsharp masking: the torch module Real-ESRGAN uses, and the NumPy function
    out["usm/basicsr_torch"] = from_t(ipu.USMSharp()(to_t(x01))) * 255
    out["usm/basicsr_numpy"] = ipu.usm_sharp(x01).astype(np.float32) * 255
    # resizes with a given size (order 2 and the final resize of Real-ESRGAN)
    xf = img.astype(np.float32)
    meta["resize_sizes"] = [[20, 27], [16, 20], [41, 53], [32, 14]]   # (h, w)
    for h, w in meta["resize_sizes"]:
        for mode in ("area", "bilinear", "bicubic"):
            out[f"resize/{mode}/{h}x{w}"] = from_t(F.interpolate(to_t(xf), size=(h, w), mode=mode))
    # DiffJPEG, on a size that is no multiple of 16
    jimg = texture(45, 61, 2)
    out["jpeg_img"] = jimg
    jp = dj.DiffJPEG(differentiable=False)
    meta["diffjpeg_qualities"] = [30.0, 47.3, 60.0, 95.0]
    for q in meta["diffjpeg_qualities"]:
        with torch.no_grad():
            y = jp(to_t(jimg.astype(np.float32) / 255), quality=torch.tensor([q]))
        out[f"diffjpeg/{q}"] = from_t(y) * 255
    # noise statistics on a ramp (every 8-bit value once per row: vals = 256)
    ramp = np.tile(np.arange(256, dtype=np.float32)[None, :, None], (128, 1, 3))
    torch.manual_seed(0)
    reps = 16
    for gray in (0, 1):
        p = np.stack([from_t(deg.generate_poisson_noise_pt(to_t(ramp / 255), scale=1.0, gray_noise=gray)) * 255
                      for _ in range(reps)])
        out[f"noise/poisson_unit/std/gray{gray}"] = p.std(axis=(0, 1, 3))
        out[f"noise/poisson_unit/mean/gray{gray}"] = p.mean(axis=(0, 1, 3))
        out[f"noise/poisson_unit/chan_corr/gray{gray}"] = np.corrcoef(p[..., 100:, 0].ravel(),
                                                                       p[..., 100:, 1].ravel())[0, 1]
        g = np.stack([from_t(deg.generate_gaussian_noise_pt(to_t(ramp / 255), sigma=10.0, gray_noise=gray)) * 255
                      for _ in range(4)])
        out[f"noise/gaussian/std/gray{gray}"] = np.float64(g.std())
        out[f"noise/gaussian/chan_corr/gray{gray}"] = np.corrcoef(g[..., 0].ravel(), g[..., 1].ravel())[0, 1]
    # an image with few distinct values: vals = 2^ceil(log2(20)) = 32
    few = np.tile((np.arange(20, dtype=np.float32) * 12)[None, :, None], (256, 1, 3))
    p = np.stack([from_t(deg.generate_poisson_noise_pt(to_t(few / 255), scale=1.0)) * 255 for _ in range(reps)])
    out["noise/poisson_unit/few_values/std"] = p.std(axis=(0, 1, 3))
    out["noise/few_values_img"] = few


REALESRGAN_CASES = [
    # kernel1, kernel2 (None: second blur skipped), final sinc (size, omega; None: pulse), order-1
    # (direction, scale, mode), order-2 (direction, scale, mode), jpeg qualities, final (resize first, mode)
    dict(kernel1=("aniso", 21, 1.8, 0.6, 0.7, 0, 0), kernel2=("generalized_iso", 13, 1.1, 1.1, 0.0, 0.7, 0),
         sinc=(11, 2.1), order1=("down", 0.75, "area"), order2=("up", 1.1, "bicubic"), q1=55.5, q2=70.2,
         final=(True, "bilinear")),
    dict(kernel1=("plateau_iso", 9, 1.4, 1.4, 0.0, 1.6, 0), kernel2=None, sinc=None,
         order1=("up", 1.25, "bicubic"), order2=("keep", 1.0, "area"), q1=38.0, q2=90.0, final=(False, "area")),
    dict(kernel1=("sinc", 7, 0, 0, 0, 0, 1.3), kernel2=("aniso", 21, 1.2, 0.35, -0.4, 0, 0), sinc=(21, np.pi),
         order1=("keep", 1.0, "bilinear"), order2=("down", 0.5, "bilinear"), q1=80.0, q2=31.0,
         final=(True, "bicubic")),
]


class ScriptedRandom:
    """Stands in for Python's ``random`` in the model module: returns scripted choices."""

    def __init__(self, choices: list, choice: list):
        self._choices, self._choice = list(choices), list(choice)

    def choices(self, population, weights=None, k=1):
        v = self._choices.pop(0)
        assert v in population, (v, population)
        return [v]

    def choice(self, seq):
        v = self._choice.pop(0)
        assert v in seq, (v, seq)
        return v


class ScriptedNumpy:
    """Stands in for ``np`` in the model module: ``np.random.uniform`` returns scripted values."""

    def __init__(self, values: list):
        self._values = list(values)
        outer = self

        class _Random:
            @staticmethod
            def uniform(low=0.0, high=1.0, size=None):
                return outer._values.pop(0)
        self.random = _Random()

    def __getattr__(self, name):
        return getattr(np, name)


def record_realesrgan(out: dict, meta: dict, root: Path, deg, ipu, dj) -> None:
    import torch
    import yaml

    model = load_realesrgan(root, deg, ipu, dj)
    opt = yaml.safe_load((root / "options/train_realesrnet_x4plus.yml").read_text())
    hr = texture(96, 128, 3)
    out["realesrgan/hr"] = hr
    meta["realesrgan_cases"] = []

    def pad21(k):
        p = (21 - k.shape[0]) // 2
        return np.pad(k, ((p, p), (p, p)))

    for i, case in enumerate(REALESRGAN_CASES):
        o = dict(opt, noise_range=[0, 0], noise_range2=[0, 0], jpeg_range=[case["q1"]] * 2,
                 jpeg_range2=[case["q2"]] * 2, gt_size=96)
        k1 = pad21(basicsr_kernel(deg, *case["kernel1"]))
        k2 = pad21(basicsr_kernel(deg, *case["kernel2"])) if case["kernel2"] else np.eye(21)[10:11].T @ np.eye(21)[10:11]
        sinc = (deg.circular_lowpass_kernel(case["sinc"][1], case["sinc"][0], pad_to=21) if case["sinc"]
                else np.eye(21)[10:11].T @ np.eye(21)[10:11])
        d1, s1, m1 = case["order1"]
        d2, s2, m2 = case["order2"]
        first, mf = case["final"]
        uniforms = ([s1] if d1 != "keep" else []) + [0.0]                       # scale, gaussian noise
        uniforms += [0.0 if case["kernel2"] else 0.99]                          # second blur
        uniforms += ([s2] if d2 != "keep" else []) + [0.0]                      # scale 2, gaussian noise
        uniforms += [0.3 if first else 0.7]                                     # final order
        model.random = ScriptedRandom([d1, d2], [m1, m2, mf])
        model.np = ScriptedNumpy(uniforms)
        fake = types.SimpleNamespace(opt=o, device="cpu", is_train=True, jpeger=dj.DiffJPEG(differentiable=False),
                                     usm_sharpener=ipu.USMSharp(), _dequeue_and_enqueue=lambda: None)
        data = {"gt": to_t(hr.astype(np.float32) / 255), "kernel1": torch.FloatTensor(k1)[None],
                "kernel2": torch.FloatTensor(k2)[None], "sinc_kernel": torch.FloatTensor(sinc)[None]}
        model.RealESRNetModel.feed_data(fake, data)
        out[f"realesrgan/lq/{i}"] = np.clip(np.rint(from_t(fake.lq) * 255), 0, 255).astype(np.uint8)
        meta["realesrgan_cases"].append({k: (list(v) if isinstance(v, tuple) else v) for k, v in case.items()})


# ---- mmagic --------------------------------------------------------------------------------------

WALK_CLIPS = 25   # clips whose walks are stored draw by draw (all N for the beta distributions)

REDS = dict(  # the settings of mmagic's RealBasicVSR REDS config (order 1 unless named)
    blur=dict(kernel_size=[7, 9, 11, 13, 15, 17, 19, 21],
              kernel_list=["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso",
                           "sinc"],
              kernel_prob=[0.405, 0.225, 0.108, 0.027, 0.108, 0.027, 0.1], sigma_x=[0.2, 3], sigma_y=[0.2, 3],
              rotate_angle=[-3.1416, 3.1416], beta_gaussian=[0.5, 4], beta_plateau=[1, 2], sigma_x_step=0.02,
              sigma_y_step=0.02, rotate_angle_step=0.31416, beta_gaussian_step=0.05, beta_plateau_step=0.1,
              omega_step=0.0628),
    resize=dict(resize_mode_prob=[0.2, 0.7, 0.1], resize_scale=[0.15, 1.5], resize_opt=["bilinear", "area", "bicubic"],
                resize_prob=[1 / 3.0, 1 / 3.0, 1 / 3.0], resize_step=0.015, is_size_even=True),
    resize2=dict(resize_mode_prob=[0.3, 0.4, 0.3], resize_scale=[0.3, 1.2], resize_opt=["bilinear", "area", "bicubic"],
                 resize_prob=[1 / 3.0, 1 / 3.0, 1 / 3.0], resize_step=0.03, is_size_even=True),
    noise=dict(noise_type=["gaussian", "poisson"], noise_prob=[0.5, 0.5], gaussian_sigma=[1, 30],
               gaussian_gray_noise_prob=0.4, poisson_scale=[0.05, 3], poisson_gray_noise_prob=0.4,
               gaussian_sigma_step=0.1, poisson_scale_step=0.005),
    jpeg=dict(quality=[30, 95], quality_step=3),
    video=dict(codec=["libx264", "h264", "mpeg4"], codec_prob=[1 / 3.0, 1 / 3.0, 1 / 3.0], bitrate=[1e4, 1e5]),
)


def record_mmagic(out: dict, meta: dict, rd, bk, ap) -> None:
    import cv2

    img = out["img"]
    # kernels of the same parameters
    for i, case in enumerate(KERNEL_CASES):
        out[f"kernel/mmagic/{i}"] = mmagic_kernel(bk, *case)
    # unsharp masking with the RealBasicVSR settings
    usm = ap.UnsharpMasking(kernel_size=51, sigma=0, weight=0.5, threshold=10, keys=["gt"])
    out["usm/mmagic"] = usm._unsharp_masking(img)
    # JPEG (OpenCV, the RGB array coded as if it were BGR: bgr2rgb defaults to False)
    jq = rd.RandomJPEGCompression(dict(quality=[40, 40]), keys=["img"])
    out["jpeg/mmagic/40"] = jq._apply_random_compression(img)

    # the walks: sigma, rotation and beta of RandomBlur, logged per frame with their increments
    np.random.seed(0)
    T, N = 8, 300
    for fam in ("generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"):
        params = dict(REDS["blur"], kernel_list=[fam], kernel_prob=[1])
        blur = rd.RandomBlur(params, keys=["img"])
        walked, applied, uniforms, draws = [], [], [], []
        rd.np = NumpyProxy(uniforms)
        gen = "generalized" in fam
        rname = "random_bivariate_generalized_gaussian_kernel" if gen else "random_bivariate_plateau_kernel"
        fname = "bivariate_generalized_gaussian" if gen else "bivariate_plateau"
        log = Logger()
        orig_r, orig_f = getattr(bk, rname), getattr(bk, fname)
        setattr(bk, rname, log.wrap(orig_r, "walked"))
        setattr(bk, fname, log.wrap(orig_f, "applied"))
        try:
            for _ in range(N):
                log.calls.clear()
                uniforms.clear()
                blur.get_kernel(T)
                w = [c for c in log.calls if c[0] == "walked"]
                a = [c for c in log.calls if c[0] == "applied"]
                # random_bivariate_*(kernel_size, sigma_x_range, sigma_y_range, rotation_range, beta_range, ...)
                walked.append([[c[1][1][0], c[1][2][0], c[1][3][0], c[1][4][0]] for c in w])
                # bivariate_*(kernel_size, sig_x, sig_y, theta, beta, ...): beta as 5th positional or keyword
                applied.append([c[1][4] if len(c[1]) > 4 else c[2]["beta"] for c in a])
                # sigma_x, sigma_y, rotation, beta_g, beta_p, omega starts; then six increments per frame
                draws.append([u[2] for u in uniforms])
        finally:
            setattr(bk, rname, orig_r)
            setattr(bk, fname, orig_f)
            rd.np = np
        walked = np.asarray(walked, dtype=np.float64)                          # (N, T, 4): sx, sy, theta, beta
        out[f"walk/{fam}/walked"] = walked[:WALK_CLIPS]
        out[f"walk/{fam}/uniforms"] = np.asarray(draws, dtype=np.float64)[:WALK_CLIPS]   # (n, 6 + 6 T)
        out[f"walk/{fam}/walked_beta"] = walked[..., 3]                       # (N, T)
        out[f"walk/{fam}/applied_beta"] = np.asarray(applied, dtype=np.float64)   # (N, T)

    # RandomResize walks (orders 1 and 2): start and increments, and the sizes of every frame
    frames = [np.zeros((75, 101, 3), np.uint8)] * 12
    for key in ("resize", "resize2"):
        sizes, draws = [], []
        for seed in range(40):
            np.random.seed(seed)
            uniforms = []
            rd.np = NumpyProxy(uniforms)
            try:
                res = rd.RandomResize(REDS[key], keys=["img"])._random_resize(list(frames))
            finally:
                rd.np = np
            sizes.append([[r.shape[1], r.shape[0]] for r in res])
            start = uniforms[0][2] if uniforms and uniforms[0][0] != -uniforms[0][1] else 1.0
            incs = [u[2] for u in uniforms if u[0] == -u[1]]
            draws.append([start] + incs)
        out[f"resize_walk/{key}/sizes"] = np.asarray(sizes)       # (40, 12, 2) (w, h)
        out[f"resize_walk/{key}/draws"] = np.asarray(draws)       # (40, 12): start, then 11 increments
    meta["resize_walk_frame"] = [101, 75]

    # RandomJPEGCompression's quality walk
    qs, draws = [], []
    jpeg = rd.RandomJPEGCompression(REDS["jpeg"], keys=["img"])
    small = [np.zeros((8, 8, 3), np.uint8)] * 12
    for seed in range(40):
        np.random.seed(seed)
        uniforms, log = [], Logger()
        rd.np = NumpyProxy(uniforms)
        rd.cv2 = types.SimpleNamespace(imencode=log.wrap(cv2.imencode, "q"), imdecode=cv2.imdecode,
                                       IMWRITE_JPEG_QUALITY=cv2.IMWRITE_JPEG_QUALITY, cvtColor=cv2.cvtColor,
                                       COLOR_BGR2RGB=cv2.COLOR_BGR2RGB)
        try:
            jpeg._apply_random_compression(list(small))
        finally:
            rd.np, rd.cv2 = np, cv2
        qs.append([c[1][2][1] for c in log.calls])
        draws.append([u[2] for u in uniforms])
    out["jpeg_walk/qualities"] = np.asarray(qs)
    out["jpeg_walk/draws"] = np.asarray(draws)           # start, then 11 increments

    # frame sizes through the whole chain (order 1, order 2, the final shuffle), noise and compression on
    clip = [texture(96, 128, 4, shift=t) for t in range(6)]
    chains = []
    for seed in range(6):
        np.random.seed(seed)
        pyrandom.seed(seed)
        steps = [("order1.blur", rd.RandomBlur(REDS["blur"], keys=["img"])),
                 ("order1.resize", rd.RandomResize(REDS["resize"], keys=["img"])),
                 ("order1.noise", rd.RandomNoise(REDS["noise"], keys=["img"])),
                 ("order1.jpeg", rd.RandomJPEGCompression(REDS["jpeg"], keys=["img"])),
                 ("order1.video", rd.RandomVideoCompression(REDS["video"], keys=["img"])),
                 ("order2.resize", rd.RandomResize(REDS["resize2"], keys=["img"])),
                 ("order2.noise", rd.RandomNoise(dict(REDS["noise"], gaussian_sigma=[1, 25],
                                                      poisson_scale=[0.05, 2.5]), keys=["img"])),
                 ("order2.jpeg", rd.RandomJPEGCompression(REDS["jpeg"], keys=["img"])),
                 ("final", rd.DegradationsWithShuffle([
                     dict(type="RandomVideoCompression", params=REDS["video"]),
                     [dict(type="RandomResize", params=dict(target_size=(24, 32), resize_opt=["bilinear", "area",
                                                                                              "bicubic"],
                                                            resize_prob=[1 / 3.0] * 3)),
                      dict(type="RandomBlur", params=dict(prob=0.8, kernel_size=[7, 9, 11, 13, 15, 17, 19, 21],
                                                          kernel_list=["sinc"], kernel_prob=[1],
                                                          omega=[3.1416 / 3, 3.1416], omega_step=0.0628))]],
                     keys=["img"]))]
        results = {"img": [f.copy() for f in clip]}
        shapes, scales = {}, {}
        for name, tr in steps:
            uniforms = []
            rd.np = NumpyProxy(uniforms)
            try:
                results = tr(results)
            finally:
                rd.np = np
            shapes[name] = [[f.shape[1], f.shape[0]] for f in results["img"]]
            if name.endswith("resize"):
                draws = [u for u in uniforms if (u[0], u[1]) != (0.0, 1.0)]   # not the step's own prob draw
                start = draws[0][2] if draws and draws[0][0] != -draws[0][1] else 1.0
                scales[name] = [start] + [u[2] for u in draws if u[0] == -u[1]]
        video_first = isinstance(steps[-1][1].degradations[0], rd.RandomVideoCompression)
        chains.append({"shapes": shapes, "walks": scales, "final_video_first": bool(video_first)})
    meta["mmagic_chains"] = chains
    meta["mmagic_chain_input"] = [128, 96]

    # noise statistics (mmagic works on [0, 255] images)
    ramp = np.tile(np.arange(256, dtype=np.float32)[None, :, None], (128, 1, 3))
    np.random.seed(1)
    for gray in (0, 1):
        noise = rd.RandomNoise(dict(noise_type=["poisson"], noise_prob=[1], poisson_scale=[1, 1],
                                    poisson_gray_noise_prob=gray), keys=["img"])
        p = np.stack([noise._apply_poisson_noise([ramp])[0] - ramp for _ in range(16)])
        out[f"noise/poisson_byte/std/gray{gray}"] = p.std(axis=(0, 1, 3))
        out[f"noise/poisson_byte/mean/gray{gray}"] = p.mean(axis=(0, 1, 3))
        gn = rd.RandomNoise(dict(noise_type=["gaussian"], noise_prob=[1], gaussian_sigma=[10, 10],
                                 gaussian_gray_noise_prob=gray), keys=["img"])
        g = np.stack([gn._apply_gaussian_noise([ramp])[0] - ramp for _ in range(4)])
        out[f"noise/mmagic_gaussian/std/gray{gray}"] = np.float64(g.std())
        out[f"noise/mmagic_gaussian/chan_corr/gray{gray}"] = np.corrcoef(g[..., 0].ravel(), g[..., 1].ravel())[0, 1]

    # video compression of 64x64 LR frames at the reference's absolute bit rates
    vclip = np.stack([texture(64, 64, 5, shift=t) for t in range(8)])
    out["video/input"] = vclip
    for codec in ("libx264", "mpeg4"):
        for rate in (10000, 100000):
            vc = rd.RandomVideoCompression(dict(codec=[codec], codec_prob=[1], bitrate=[rate, rate]), keys=["img"])
            y = vc._apply_random_compression(list(vclip))
            out[f"video/{codec}/{rate}"] = np.clip(np.rint(np.stack(y)), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--basicsr", required=True, type=Path, help="checkout of XPixelGroup/BasicSR")
    ap.add_argument("--realesrgan", required=True, type=Path, help="checkout of xinntao/Real-ESRGAN")
    ap.add_argument("--mmagic", required=True, type=Path, help="checkout of open-mmlab/mmagic")
    args = ap.parse_args(argv)
    for p, f in ((args.basicsr, "basicsr/data/degradations.py"),
                 (args.realesrgan, "realesrgan/models/realesrnet_model.py"), (args.mmagic, MMAGIC_DEG)):
        if not (p / f).is_file():
            ap.error(f"{p}: no {f} there")
    import torch

    torch.set_num_threads(1)
    out: dict = {}
    meta: dict = {"sources": {"BasicSR": commit(args.basicsr), "Real-ESRGAN": commit(args.realesrgan),
                              "mmagic": commit(args.mmagic)},
                  "versions": {"torch": torch.__version__, "numpy": np.__version__}}
    deg, ipu, dj = load_basicsr(args.basicsr)
    record_basicsr(out, meta, deg, ipu, dj)
    record_realesrgan(out, meta, args.realesrgan, deg, ipu, dj)
    rd, bk, apx = load_mmagic(args.mmagic)
    record_mmagic(out, meta, rd, bk, apx)
    arrays = {k: np.asarray(v) for k, v in out.items()}
    for k, v in arrays.items():
        if v.dtype == np.float64 and v.ndim >= 3 and not k.startswith(("kernel", "walk")):
            arrays[k] = v.astype(np.float32)
    np.savez_compressed(HERE / "degradation_reference.npz", **arrays)
    (HERE / "degradation_reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = (HERE / "degradation_reference.npz").stat().st_size
    print(f"wrote {len(arrays)} arrays ({size / 1e3:.0f} kB) and degradation_reference.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
