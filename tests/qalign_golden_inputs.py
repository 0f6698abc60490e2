"""Deterministic weights and inputs for the Q-Align reference test (tests/test_scoring_qalign.py).

tests/data/qalign_golden.json holds what the official Q-Align code (Q-Future/Q-Align at
14dfdff, transformers 4.36.1) gives for exactly these weights, tokenizer and inputs;
datakit's implementation must reproduce it. Written by tests/data/record_qalign_reference.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
TOKENIZER = DATA / "qalign_tiny_tokenizer.model"   # SentencePiece, from datakit.scoring.qalign.tiny.train_tokenizer
PREPROCESS_SIZE = 56
VOCAB = 560

# config.json of the tiny checkpoint, in the official layout (MPLUGOwl2Config fields)
TINY_CONFIG = {
    "model_type": "mplug_owl2", "vocab_size": VOCAB, "hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "rms_norm_eps": 1e-6,
    "max_position_embeddings": 256, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2,
    "visual_config": {
        "visual_model": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                         "num_attention_heads": 2, "image_size": 56, "patch_size": 14, "layer_norm_eps": 1e-6},
        "visual_abstractor": {"num_learnable_queries": 4, "hidden_size": 16, "num_hidden_layers": 2,
                              "num_attention_heads": 2, "intermediate_size": 24, "encoder_hidden_size": 16,
                              "grid_size": 4, "layer_norm_eps": 1e-6},
    },
}

# (task, kind) prompts of the official scorer.py classes
PROMPTS = [("quality", "image"), ("aesthetics", "image"), ("quality", "video")]

# (frames, fps) for the official 1-fps video frame sampling
VIDEO_SAMPLING = [(77, 16.0), (77, 24.0), (17, 24.0), (250, 25.0), (120, 29.97002997002997), (30, 10.0)]


def deterministic_state_dict(reference: dict) -> dict:
    """DOVER's deterministic weights (fixed generator, sorted keys), with the abstractor's fixed
    sin-cos position tables kept, its inner LayerNorm scales moved around 1 like the other norms,
    and the other weights scaled to about 1/sqrt(width) (std 0.2) so every input changes the logits."""
    from dover_golden_inputs import deterministic_state_dict as base

    sd = base(reference)
    for k in sd:
        if k.endswith(("q_pos_embed", "k_pos_embed")):
            sd[k] = reference[k].clone()
        elif k.endswith("ffn_ln.weight"):
            sd[k] = sd[k] + 1.0
        elif sd[k].is_floating_point() and not ("norm" in k and k.endswith(".weight")):
            sd[k] = sd[k] * 4.0
    return sd


def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [128 + 70 * np.sin(x / (4 + c) + c) + 40 * np.cos(y / (6 + 2 * c)) + rs.normal(0, 25, (h, w))
             for c in range(3)]
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def golden_images() -> list[np.ndarray]:
    """Landscape, portrait, square and larger-than-model frames (padding and resizing both matter)."""
    return [_pattern(h, w, i) for i, (h, w) in enumerate([(40, 60), (64, 48), (56, 56), (90, 130)])]


def golden_videos() -> list[list[np.ndarray]]:
    return [[_pattern(48, 80, 10 + i) for i in range(3)], [_pattern(70, 50, 20 + i) for i in range(2)]]
