"""The named degradation profiles a pipeline selects with ``profile:``.

* ``realesrgan`` - Real-ESRGAN's second-order model as its training code runs it
  (``train_realesrnet_x4plus.yml``, ``RealESRNetModel.feed_data``): unsharp-masked input,
  drawn once per clip and the same on every frame (noise fields excepted), torch's resize
  modes ("area" = adaptive average pooling), its DiffJPEG, order 2 scaled from the LR size,
  final group = [resize + sinc] and JPEG in random order.
* ``realbasicvsr`` - mmagic's RealBasicVSR (``random_degradations.py`` with its REDS config):
  unsharp-masked input, a per-frame random walk of every parameter, kernel shapes drawn as
  mmagic does (uniform start, each frame re-drawn towards 1), even frame sizes kept per frame
  until a step needs one size, order 2 scaled from the current size, Poisson noise on the
  [0, 255] image, OpenCV's JPEG in both orders, video compression after order 1 and, in
  random order with [resize + sinc], at the end, at mmagic's bits per LR pixel.
* ``light`` - for LR that already went through SDEdit (light): one order with milder
  ranges, no sharpening, a sinc half the time, video compression half the time at higher
  bit rates (mmagic's conventions otherwise).
* ``heavy`` - ``realbasicvsr`` with the second blur always on, lower JPEG qualities in
  order 1 and lower final bit rates.

``light`` and ``heavy`` are datakit presets, not published settings; every range,
probability and convention of every profile can be overridden from the pipeline YAML
(``overrides:``). Noise uses the "fast" samplers by default (the same distributions;
``sampler: exact`` for NumPy's, see docs/benchmarks.md).
"""
from __future__ import annotations

from .chain import SecondOrder
from .config import (PI, BlurConfig, ChainConfig, FinalConfig, JpegConfig, NoiseConfig, OrderConfig,
                     ResizeConfig, UsmConfig, VideoConfig, override)

#: RealBasicVSR's per-frame walk steps for blur kernels.
KERNEL_WALK = dict(sigma_step=0.02, rotation_step=0.31416, betag_step=0.05, betap_step=0.1, omega_step=0.0628)
#: mmagic's kernel-shape conventions: start uniform over the range, each frame re-drawn towards 1.
MMAGIC_BETA = dict(beta_start="uniform", beta_redraw=True)
#: Real-ESRGAN resizes with torch's interpolate: its "area" is adaptive average pooling.
TORCH_MODES = dict(modes=("torch_area", "bilinear", "bicubic"))

REALESRGAN = ChainConfig(
    usm=UsmConfig(enabled=True),
    order1=OrderConfig(
        resize=ResizeConfig(**TORCH_MODES),
        jpeg=JpegConfig(codec="diffjpeg")),
    order2=OrderConfig(
        blur=BlurConfig(prob=0.8, sigma=(0.2, 1.5)),
        resize=ResizeConfig(direction_probs=(0.3, 0.4, 0.3), scale=(0.3, 1.2), **TORCH_MODES),
        noise=NoiseConfig(sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5)),
        jpeg=JpegConfig(prob=0.0)),
    final=FinalConfig(jpeg=JpegConfig(quality=(30.0, 95.0), codec="diffjpeg"), **TORCH_MODES),
    order2_scale_from="lr",
)

REALBASICVSR = ChainConfig(
    usm=UsmConfig(enabled=True),
    order1=OrderConfig(
        blur=BlurConfig(**KERNEL_WALK, **MMAGIC_BETA),
        resize=ResizeConfig(step=0.015, even=True),
        noise=NoiseConfig(sigma_step=0.1, poisson_step=0.005, poisson_units="byte"),
        jpeg=JpegConfig(step=3.0),
        video=VideoConfig(prob=1.0)),
    order2=OrderConfig(
        blur=BlurConfig(prob=0.8, sigma=(0.2, 1.5), **KERNEL_WALK, **MMAGIC_BETA),
        resize=ResizeConfig(direction_probs=(0.3, 0.4, 0.3), scale=(0.3, 1.2), step=0.03, even=True),
        noise=NoiseConfig(sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5), sigma_step=0.1, poisson_step=0.005,
                          poisson_units="byte"),
        jpeg=JpegConfig(step=3.0)),
    final=FinalConfig(
        sinc=BlurConfig(prob=0.8, sinc_prob=1.0, omega=(PI / 3, PI), omega_step=0.0628),
        jpeg=JpegConfig(prob=0.0),
        video=VideoConfig(prob=1.0)),
    order2_scale_from="current",
)

LIGHT = ChainConfig(
    order1=OrderConfig(
        blur=BlurConfig(sigma=(0.2, 1.5), **KERNEL_WALK, **MMAGIC_BETA),
        resize=ResizeConfig(scale=(0.5, 1.2), step=0.015, even=True),
        noise=NoiseConfig(sigma=(1.0, 10.0), poisson_scale=(0.05, 1.0), sigma_step=0.1, poisson_step=0.005,
                          poisson_units="byte"),
        jpeg=JpegConfig(quality=(60.0, 95.0), step=3.0)),
    order2=OrderConfig(prob=0.0),
    final=FinalConfig(
        sinc=BlurConfig(prob=0.5, sinc_prob=1.0, omega=(PI / 2, PI), omega_step=0.0628),
        jpeg=JpegConfig(prob=0.0),
        video=VideoConfig(prob=0.5, bpp=(3e4 / 4096, 1e5 / 4096))),
    order2_scale_from="current",
)

HEAVY = override(REALBASICVSR, {
    "order1": {"jpeg": {"quality": [30, 80]}},
    "order2": {"blur": {"prob": 1.0}},
    "final": {"video": {"bpp": [1e4 / 4096, 4e4 / 4096]}},
})


class RealESRGAN(SecondOrder):
    name = "realesrgan"
    defaults = REALESRGAN


class RealBasicVSR(SecondOrder):
    name = "realbasicvsr"
    defaults = REALBASICVSR


class Light(SecondOrder):
    name = "light"
    defaults = LIGHT


class Heavy(SecondOrder):
    name = "heavy"
    defaults = HEAVY
