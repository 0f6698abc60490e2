"""Deterministic weights and inputs for the DOVER reference-output test (tests/test_dover.py).

tests/data/dover_golden.json holds the branch outputs that the official DOVER code
(VQAssessment/DOVER at f1ddc96) gives for exactly these weights and inputs; datakit's
implementation must reproduce them.
"""
import torch

CASES = {
    # DOVER / DOVER++ architecture on a small input (every code path: padding, shrunken
    # windows, shifted-window masks, fragment gates), DOVER-Mobile at the real view size.
    "dover_small": {"arch": "dover", "clips": 2, "frames": 8, "size": 96},
    "mobile_full": {"arch": "mobile", "clips": 2, "frames": 32, "size": 224},
}


def deterministic_state_dict(reference: dict) -> dict:
    """Weights drawn from a fixed generator in sorted key order; integer buffers are kept.
    Norm weights sit around 1, layer scales around 0.1, position-bias tables are large (so
    the attention biases matter), everything else is small noise."""
    g = torch.Generator().manual_seed(1234)
    out = {}
    for key in sorted(reference):
        v = reference[key]
        if not v.is_floating_point():
            out[key] = v.clone()
            continue
        noise = torch.randn(v.shape, generator=g) * (1.0 if "position_bias_table" in key else 0.05)
        if ("norm" in key and key.endswith(".weight")) or key.endswith("downsample_layers.0.1.weight"):
            noise = noise + 1.0
        elif key.endswith(".gamma") and "grn" not in key:
            noise = noise + 0.1
        out[key] = noise
    return out


def deterministic_inputs(case: dict) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(99)
    t, s = case["frames"], case["size"]
    technical = torch.randn((case["clips"], 3, t, s, s), generator=g)
    aesthetic = torch.randn((1, 3, t, s, s), generator=g)
    return technical, aesthetic


# Views: position-coded synthetic clips (R = y mod 256, G = x mod 256, B = 16 * (y // 256) + x // 256),
# so the official technical view tells where every fragment was cut from.
VIEW_CASES = {
    "bikes_like": {"frames": 130, "height": 272, "width": 640, "seed": 3},
    "hd_short": {"frames": 77, "height": 720, "width": 1280, "seed": 0},
    "small_upscaled": {"frames": 77, "height": 144, "width": 176, "seed": 1},
}


def position_coded_clip(case: dict):
    import numpy as np

    y, x = np.mgrid[0:case["height"], 0:case["width"]]
    frame = np.stack([y % 256, x % 256, 16 * (y // 256) + x // 256], -1).astype(np.uint8)
    clip = np.repeat(frame[None], case["frames"], axis=0)
    clip[:, 0, 0, 2] = np.arange(case["frames"]) % 256   # frame number in one corner pixel
    return clip


def decode_fragment_offsets(technical, fragments: int = 7, fsize: int = 32):
    """(clips, 3, T, S, S) normalised view -> top-left (y, x) of every fragment, per clip: nested lists."""
    import torch

    mean = torch.tensor((123.675, 116.28, 103.53)).view(1, 3, 1, 1, 1)
    std = torch.tensor((58.395, 57.12, 57.375)).view(1, 3, 1, 1, 1)
    px = (technical * std + mean).round().to(torch.int64)
    out = []
    for c in range(px.shape[0]):
        rows = []
        for i in range(fragments):
            for j in range(fragments):
                r, g, b = (int(px[c, k, 0, i * fsize, j * fsize]) for k in range(3))
                rows.append([r + 256 * (b // 16), g + 256 * (b % 16)])
        out.append(rows)
    return out
