"""The one-align backend: Q-Align's released mPLUG-Owl2 weights (``model_type: mplug_owl2``).

A one-align directory holds ``config.json``, the weights (``pytorch_model-*.bin`` shards
with their index, or safetensors), the LLaMA tokenizer (``tokenizer.model``,
``tokenizer_config.json``, ``special_tokens_map.json``) and ``preprocessor_config.json``
(CLIP preprocessing at 448 px). The Python files beside them (the remote code) are not
used. Prompt tokens, preprocessing and the rating-word ids follow the official scorer
(``q_align/evaluate/scorer.py``):

- tokens: ``<s>`` + the text before the image placeholder + the image + the text after
  it, each text piece tokenised on its own without special tokens;
- rating words: the first token of each word (the official code takes the id after
  ``<s>``);
- pixels: padded to a square with the mean colour, resized (shortest side, PIL, the
  configured filter: bicubic), centre-cropped, scaled to 0..1, normalised, as
  transformers 4.36's ``CLIPImageProcessor`` did (transformers 5's processor resizes
  with torchvision and differs in the last digits).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .prompts import IMAGE_PLACEHOLDER, RATING_WORDS, Task, onealign_prompt, pad_to_square


@dataclass(frozen=True)
class ClipPreprocess:
    """CLIP preprocessing as the released ``preprocessor_config.json`` describes it."""

    size: int                              # shortest edge after resizing
    crop: tuple[int, int]                  # (height, width) of the centre crop
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: int = 3                      # PIL filter id (3 = bicubic)

    @classmethod
    def from_file(cls, path: str | Path) -> "ClipPreprocess":
        d = json.loads(Path(path).read_text())
        size = d.get("size", 224)
        size = size.get("shortest_edge") if isinstance(size, dict) else size
        crop = d.get("crop_size", size)
        crop = (crop["height"], crop["width"]) if isinstance(crop, dict) else (crop, crop)
        if not d.get("do_resize", True) or not d.get("do_normalize", True):
            raise ValueError(f"{path}: Q-Align expects do_resize and do_normalize")
        return cls(int(size), (int(crop[0]), int(crop[1])), tuple(d["image_mean"]), tuple(d["image_std"]),
                   int(d.get("resample", 3)))

    @property
    def fill(self) -> tuple[int, int, int]:
        return tuple(int(m * 255) for m in self.mean)

    def __call__(self, frames: Sequence[np.ndarray]):
        """``(N, 3, crop_h, crop_w)`` float32 tensor of RGB uint8 frames."""
        import torch
        from PIL import Image

        out = []
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        for f in frames:
            img = Image.fromarray(pad_to_square(np.ascontiguousarray(f), self.fill))
            w, h = img.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(self.size * long / short)
            img = img.resize((self.size, new_long) if w <= h else (new_long, self.size), resample=self.resample)
            a = np.asarray(img)
            ch, cw = self.crop
            top, left = (a.shape[0] - ch) // 2, (a.shape[1] - cw) // 2
            a = a[top:top + ch, left:left + cw]
            x = (a * (1 / 255)).astype(np.float32)
            out.append(((x - mean) / std).transpose(2, 0, 1))
        return torch.from_numpy(np.ascontiguousarray(np.stack(out)))


class OneAlign:
    name = "mplug_owl2"

    def __init__(self, path: str | Path, device, dtype, frame_batch: int = 16):
        from transformers import LlamaTokenizer

        from . import owl2

        path = Path(path)
        self.path = path
        self.model = owl2.load(path, device, dtype)
        self.tokenizer = LlamaTokenizer.from_pretrained(path, local_files_only=True)
        self.preprocess = ClipPreprocess.from_file(path / "preprocessor_config.json")
        self.frame_batch = frame_batch
        self.rating_ids = [self.word_id(w) for w in RATING_WORDS]

    def word_id(self, word: str) -> int:
        ids = self.tokenizer(word, add_special_tokens=False).input_ids
        if not ids:
            raise ValueError(f"{self.path}: the tokenizer gives no token for {word!r}")
        return int(ids[0])

    def prompt_ids(self, task: Task, kind: str) -> list[int]:
        from .owl2 import IMAGE_TOKEN_INDEX

        before, after = onealign_prompt(task, kind).split(IMAGE_PLACEHOLDER)
        enc = self.tokenizer
        bos = enc.bos_token_id if enc.bos_token_id is not None else self.model.config.bos_token_id
        return ([bos] + enc(before, add_special_tokens=False).input_ids + [IMAGE_TOKEN_INDEX]
                + enc(after, add_special_tokens=False).input_ids)

    def _tokens(self, frames: Sequence[np.ndarray]):
        """Language-side image tokens of each frame: ``(N, queries + 1, hidden)``."""
        import torch

        parts = []
        for s in range(0, len(frames), self.frame_batch):
            px = self.preprocess(frames[s:s + self.frame_batch]).to(self.model.device, self.model.dtype)
            parts.append(self.model.encode_images(px))
        return torch.cat(parts)

    def image_logits(self, frames: Sequence[np.ndarray], task: Task) -> np.ndarray:
        import torch

        with torch.inference_mode():
            toks = self._tokens(frames)
            ids = self.prompt_ids(task, "image")
            out = self.model.last_logits([ids] * len(frames), list(toks), self.rating_ids)
        return out.float().cpu().numpy()

    def video_logits(self, videos: Sequence[Sequence[np.ndarray]], task: Task) -> np.ndarray:
        import torch

        with torch.inference_mode():
            toks = self._tokens([f for v in videos for f in v])
            per_video = torch.split(toks, [len(v) for v in videos])
            ids = self.prompt_ids(task, "video")
            out = self.model.last_logits([ids] * len(videos), [t.flatten(0, 1) for t in per_video], self.rating_ids)
        return out.float().cpu().numpy()

    def describe(self) -> dict:
        return {"backend": self.name, "dtype": str(self.model.dtype).replace("torch.", ""),
                "rating_token_ids": list(self.rating_ids), "image_size": self.preprocess.crop[0]}
