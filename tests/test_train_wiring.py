"""The UniMMVSR model reads its conditions, reproduces from its seed, and trains the same with the
GPU options (bf16 autocast, gradient checkpointing) as far as a CPU shows it.

No shards and no VAE here: latents are drawn directly, so each test controls what the
conditions carry. The objective is the trainer's own (:func:`datakit.train.trainer.flow_loss`).
"""
from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)

# The tiny Wan of datakit.tiny has a 24-wide hidden state for the 64 latent values of a token
# (16 channels x 2x2 patch) plus as many LR values: it cannot carry a token's LR through, let
# alone copy a reference. This transformer is just large enough: 4 latent channels (32 values
# per token with the LR), 4 heads of 24 (hidden 96), 2 blocks.
WIRING_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=24, in_channels=4,
                          out_channels=4, text_dim=32, freq_dim=256, ffn_dim=64, num_layers=2, cross_attn_norm=True,
                          qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
Z, B, F, H, W = 4, 16, 1, 4, 4
TASKS = ("lr", "images", "video")


def base_transformer(seed: int = 0, **over):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(**(WIRING_TRANSFORMER | over))


def batch(g: torch.Generator, task: str, true: bool):
    """Latents where the target can only be known from one condition.

    ``lr``: the target equals the LR latent. ``images``: every target frame equals one ID-image
    latent (no LR). ``video``: the target equals the reference video latent (no LR). With
    ``true`` False that condition is an independent draw instead (a shuffled condition).
    """
    from datakit.train.data import Encoded

    x0 = torch.randn(B, Z, F, H, W, generator=g)
    other = torch.randn(B, Z, F, H, W, generator=g)
    text = torch.zeros(B, 4, 32)
    zero = torch.zeros_like(x0)
    if task == "lr":
        return Encoded(hr=x0, lr=x0 if true else other, text=text)
    if task == "images":
        img = x0[:, :, :1]
        return Encoded(hr=img.expand_as(x0).contiguous(), lr=zero, text=text,
                       refs=[("images", img if true else other[:, :, :1])])
    return Encoded(hr=x0, lr=zero, text=text, refs=[("video", x0 if true else other)])


def draw(g: torch.Generator, enc):
    """σ uniform, fresh noise; LR noise augmentation off (t_aug = 0 leaves the LR latent as it is)."""
    from datakit.train.trainer import Draw

    return Draw(sigma=float(torch.rand((), generator=g)), noise=torch.randn(enc.hr.shape, generator=g), aug_t=0,
                aug_noise=torch.randn(enc.lr.shape, generator=g))


def test_conditions_are_read_lr_channels_and_reference_tokens():
    """Trained on fresh random latents, the loss falls far lower when the LR / ID image / reference
    video carries the target than when it is an unrelated draw: the model reads each condition.
    (With an unrelated condition no model can beat predicting the unconditional velocity.)"""
    from datakit.train.model import build
    from datakit.train.trainer import flow_loss

    steps = 240                  # 80 per condition; about 4 s per training on one core
    result = {}
    for true in (True, False):
        model = build(base_transformer(), seed=0)
        opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
        g = torch.Generator().manual_seed(1)
        for i in range(steps):
            enc = batch(g, TASKS[i % len(TASKS)], true)
            loss = flow_loss(model, enc, draw(g, enc))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        g = torch.Generator().manual_seed(999)      # held-out draws
        with torch.no_grad():
            result[true] = {t: sum(float(flow_loss(model, e := batch(g, t, true), draw(g, e)))
                                   for _ in range(8)) / 8 for t in TASKS}
    for t in TASKS:
        assert result[True][t] < 0.5 * result[False][t], (t, result)


def test_every_new_parameter_comes_from_the_seed():
    """Two builds with the same seed are equal whatever the global generator did before; another seed
    changes exactly the parameters that are neither copied from the base model nor zero."""
    from datakit.train.model import build

    base = base_transformer()
    torch.manual_seed(123)
    a = build(base, seed=7).state_dict()
    torch.manual_seed(456)
    torch.rand(1000)
    b = build(base, seed=7).state_dict()
    c = build(base, seed=8).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    differ = sorted(k for k in a if not torch.equal(a[k], c[k]))
    assert differ == ["aug_embedder.embedder.linear_1.bias", "aug_embedder.embedder.linear_1.weight"]


def _loss_and_grads(model, enc, d, autocast=False):
    from datakit.train.trainer import flow_loss

    model.zero_grad(set_to_none=True)
    loss = flow_loss(model, enc, d, autocast=autocast)
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_and_bf16_autocast_on_cpu():
    """Gradient checkpointing recomputes the same step; bf16 autocast runs the blocks in bf16 over
    float32 master weights and lands near the float32 step."""
    from datakit.train.model import build

    model = build(base_transformer(), seed=0)
    with torch.no_grad():                            # make the new inputs matter, as after training
        model.patch_embedding.weight[:, Z:].normal_(0, 0.05, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(5)
    enc = batch(g, "video", True)
    d = draw(g, enc)
    loss, grads = _loss_and_grads(model, enc, d)
    model.gradient_checkpointing = True
    loss_gc, grads_gc = _loss_and_grads(model, enc, d)
    assert loss_gc == pytest.approx(loss, rel=1e-6)
    assert grads.keys() == grads_gc.keys()
    for n in grads:
        torch.testing.assert_close(grads_gc[n], grads[n], rtol=1e-4, atol=1e-7)

    seen = []
    hook = model.blocks[0].ffn.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    loss_bf, grads_bf = _loss_and_grads(model, enc, d, autocast=True)
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}    # computed in bf16 ...
    assert all(p.dtype == torch.float32 for p in model.parameters())            # ... over fp32 weights
    assert all(g.dtype == torch.float32 for g in grads_bf.values())
    assert loss_bf == pytest.approx(loss, rel=3e-2)
    cos = torch.nn.functional.cosine_similarity(torch.cat([g.flatten() for g in grads_bf.values()]),
                                                torch.cat([g.flatten() for g in grads.values()]), dim=0)
    assert cos > 0.98
