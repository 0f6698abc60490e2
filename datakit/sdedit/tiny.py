"""A tiny, randomly initialised Wan 2.1 text-to-video model in the diffusers layout.

Built with the real classes (``AutoencoderKLWan``, ``WanTransformer3DModel``,
``UMT5EncoderModel``, a fast tokenizer, ``UniPCMultistepScheduler`` configured as Wan 2.1's
flow scheduler) at diffusers' own test sizes, and saved with ``save_pretrained`` as a
``WanPipeline`` directory, so :func:`datakit.sdedit.load_model` reads it exactly as it reads
``Wan2.1-T2V-1.3B-Diffusers``. The whole SDEdit path runs on CPU in about a second.
"""
from __future__ import annotations

from pathlib import Path

from .. import tiny

#: Sizes of the tiny components (diffusers' Wan test sizes); recorded in the marker file.
TINY_VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                temperal_downsample=[False, True, True])
TINY_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
                        out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
TINY_TEXT = dict(d_model=32, d_kv=8, d_ff=32, num_layers=2, num_heads=4, relative_attention_num_buckets=8)
#: Wan 2.1's released flow scheduler settings.
WAN21_SCHEDULER = dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                       num_train_timesteps=1000)


def write_tiny_wan(dest: str | Path, seed: int = 0) -> Path:
    """Write the tiny Wan pipeline into ``dest`` (created) and return ``dest``."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tiny.word_tokenizer(["<pad>", "</s>", "<unk>"], template="$A </s>"),
        pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512)
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                                               eos_token_id=tok.eos_token_id, **TINY_TEXT)).eval()
    vae = AutoencoderKLWan(**TINY_VAE).eval()
    transformer = WanTransformer3DModel(**TINY_TRANSFORMER).eval()
    scheduler = UniPCMultistepScheduler(**WAN21_SCHEDULER)
    pipe = WanPipeline(tokenizer=tok, text_encoder=text_encoder, transformer=transformer, vae=vae,
                       scheduler=scheduler)
    pipe.save_pretrained(dest, safe_serialization=True)
    tiny.mark(dest, "wan2.1", {"vae": TINY_VAE, "transformer": {**TINY_TRANSFORMER, "patch_size": [1, 2, 2]},
                               "text_encoder": TINY_TEXT, "scheduler": WAN21_SCHEDULER, "seed": seed})
    return dest
