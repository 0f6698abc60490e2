"""Tiny random Q-Align models in the two layouts :func:`datakit.scoring.qalign.load` reads.

- ``qalign``: the one-align layout (``model_type: mplug_owl2``): :mod:`.owl2` at toy sizes
  (56-pixel images, 14-pixel patches, a 2-layer decoder), a
  SentencePiece LLaMA tokenizer trained offline on the Q-Align prompts (``tokenizer.model``
  with ``tokenizer_config.json``) and a one-align ``preprocessor_config.json``.
- ``qalign_llava``: a transformers-native LLaVA (the tiny captioner's classes) whose
  vocabulary holds the rating words.

Scores from them are meaningless; they exist so that the scoring path, the score stage
and the CLI run end to end with the loaders users run on real weights.
"""
from __future__ import annotations

import json
from pathlib import Path

from ... import tiny
from . import RATING_WORDS, answer_prefix, question

TINY_IMAGE = 56
TINY_PATCH = 14
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def tokenizer_corpus() -> list[str]:
    lines = []
    for task in ("quality", "aesthetics"):
        for kind in ("image", "video"):
            lines += [f"USER: {question(task, kind)}", f"ASSISTANT: {answer_prefix(task, kind)}"]
            lines += [f"{answer_prefix(task, kind)} {w}." for w in RATING_WORDS]
    lines.append(" ".join(tiny.CAPTION_WORDS))
    return lines * 20


def train_tokenizer(dest_file: str | Path) -> Path:
    """A LLaMA-style SentencePiece model (BPE, byte fallback, <unk>=0 <s>=1 </s>=2) trained offline."""
    import io

    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tokenizer_corpus()), model_writer=buf, vocab_size=560, model_type="bpe",
        byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        add_dummy_prefix=True, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, hard_vocab_limit=False, minloglevel=2)
    dest_file = Path(dest_file)
    dest_file.write_bytes(buf.getvalue())
    return dest_file


def write_tokenizer_files(dest: Path, vocab_file: Path) -> int:
    """``tokenizer.model`` + the LLaMA ``tokenizer_config.json`` / ``special_tokens_map.json``; returns the vocab size."""
    import shutil

    import sentencepiece as spm

    if vocab_file.resolve() != (dest / "tokenizer.model").resolve():
        shutil.copyfile(vocab_file, dest / "tokenizer.model")
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    (dest / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": False,
         "model_max_length": 2048, "padding_side": "right", "clean_up_tokenization_spaces": False, **specials},
        indent=2) + "\n")
    (dest / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
    return spm.SentencePieceProcessor(model_file=str(dest / "tokenizer.model")).get_piece_size()


def write_preprocessor(dest: Path, size: int = TINY_IMAGE) -> None:
    """one-align's ``preprocessor_config.json`` (CLIP mean/std, bicubic, square crop) at ``size``."""
    (dest / "preprocessor_config.json").write_text(json.dumps(
        {"crop_size": size, "do_center_crop": True, "do_normalize": True, "do_resize": True,
         "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": list(CLIP_MEAN),
         "image_std": list(CLIP_STD), "resample": 3, "size": size}, indent=2) + "\n")


def tiny_config(vocab_size: int):
    from .owl2 import AbstractorConfig, Owl2Config, VisionConfig

    grid = TINY_IMAGE // TINY_PATCH
    return Owl2Config(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, rms_norm_eps=1e-6,
        vision=VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                            image_size=TINY_IMAGE, patch_size=TINY_PATCH),
        abstractor=AbstractorConfig(num_learnable_queries=4, hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=24, encoder_hidden_size=16,
                                    grid_size=grid))


def random_weights(model, seed: int) -> None:
    """Small normal weights, norm scales around 1; the fixed position tables are kept."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.05
            p.copy_(noise + 1.0 if "norm" in name and name.endswith("weight") else noise)


def write_tiny_onealign(dest: str | Path, seed: int = 0, vocab_file: str | Path | None = None) -> Path:
    """Write a tiny random one-align directory into ``dest``; ``vocab_file`` reuses a SentencePiece model."""
    from . import owl2

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    spm_file = Path(vocab_file) if vocab_file else train_tokenizer(dest / "tokenizer.model")
    vocab = write_tokenizer_files(dest, spm_file)
    write_preprocessor(dest)
    model = owl2.Owl2ForScoring(tiny_config(vocab))
    random_weights(model, seed)
    owl2.save(model, dest)
    tiny.mark(dest, "mplug_owl2", {"image_size": TINY_IMAGE, "patch_size": TINY_PATCH, "seed": seed})
    return dest


QALIGN_WORDS = tuple(tiny.CAPTION_WORDS) + RATING_WORDS + ("how", "would", "you", "rate", "quality", "aesthetics")


def write_tiny_llava(dest: str | Path, seed: int = 0) -> Path:
    """A tiny LLaVA (transformers classes) whose word vocabulary holds the rating words."""
    from ...captioning.tiny import write_tiny_captioner

    return write_tiny_captioner(dest, seed=seed, words=QALIGN_WORDS)
