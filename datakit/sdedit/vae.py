"""Tiled and sliced VAE encode/decode, for videos whose full-frame VAE pass does not fit.

The Wan VAE already walks a video in time (one latent frame, four video frames, at a time,
with causal caches), so its memory grows with H × W, not with the frame count; a 1080p clip
needs several times what 480p needs. Tiling cuts each frame into overlapping ``tile`` × ``tile``
pixel tiles ``stride`` pixels apart, runs the VAE on each and blends the overlaps linearly;
slicing runs the clips of a batch one at a time. Both are diffusers' own implementation
(``AutoencoderKLWan.enable_tiling`` / ``enable_slicing``); this module only names the
settings, applies them to a VAE and estimates what a pass needs.

Tiling changes results near tile seams (the tiles do not see each other's context): on the
released VAE at its default 256/192 the differences are small; ``tests/test_sdedit_memory.py``
states the tolerance measured on the tiny random VAE. Clips no larger than one tile are
encoded exactly as without tiling.

Use it wherever HR passes the VAE, e.g. a trainer holding a base model from
:func:`datakit.sdedit.load_model`::

    from datakit.sdedit.vae import VaeTiling
    wan.set_vae_tiling(VaeTiling())          # encode_video / decode_video now tile
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class VaeTiling:
    tile: int = 256          # tile side in pixels (diffusers' default for Wan)
    stride: int = 192        # pixels between tile origins; overlap = tile - stride, blended
    slicing: bool = True     # clips of a batch through the VAE one at a time

    def __post_init__(self):
        if self.tile < 16 or self.tile % 8:
            raise ValueError(f"VAE tile {self.tile}: must be a multiple of 8 and at least 16 pixels")
        if not 8 <= self.stride <= self.tile or self.stride % 8:
            raise ValueError(f"VAE tile stride {self.stride}: must be a multiple of 8 in [8, tile={self.tile}]")

    def describe(self) -> dict:
        return asdict(self)


def apply(vae, tiling: VaeTiling | None) -> None:
    """Switch tiling (and slicing) of a diffusers VAE on with ``tiling``'s sizes, or off for None."""
    if tiling is None:
        vae.disable_tiling()
        vae.disable_slicing()
        return
    vae.enable_tiling(tile_sample_min_height=tiling.tile, tile_sample_min_width=tiling.tile,
                      tile_sample_stride_height=tiling.stride, tile_sample_stride_width=tiling.stride)
    if tiling.slicing:
        vae.enable_slicing()
    else:
        vae.disable_slicing()


def working_pixels(height: int, width: int, tiling: VaeTiling | None) -> int:
    """Pixels per frame the VAE works on at once: the frame, or one tile."""
    if tiling is None:
        return height * width
    return min(height, tiling.tile) * min(width, tiling.tile)


def tile_overhead(height: int, width: int, tiling: VaeTiling | None) -> float:
    """How many times the output the tiled decode holds before blending (overlaps counted twice)."""
    if tiling is None or (height <= tiling.tile and width <= tiling.tile):
        return 1.0
    return (tiling.tile / tiling.stride) ** 2
