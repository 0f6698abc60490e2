"""Captions from a transformers vision-language model in a local directory (SPEC §3.3).

Any model ``AutoModelForImageTextToText`` and ``AutoProcessor`` load from the directory
works when its processor takes ``images=`` and ``text=`` (LLaVA 1.5 / LLaVA-NeXT, Qwen2-VL,
Idefics3/SmolVLM, PaliGemma, ...; the paper used LLaVA). The prompt is built with the
processor's chat template when it has one, else used as is. A clip is shown as one image:
its middle frame, or ``frames`` evenly spaced frames tiled into a grid. Decoding is greedy,
so a caption is a deterministic function of the clip and the settings.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..tiny import is_tiny

DEFAULT_PROMPT = "Describe this video in detail: the subjects, their appearance and actions, the scene and the camera."


def pick_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """``n`` evenly spaced frames (the middle one for ``n = 1``)."""
    t = frames.shape[0]
    if n <= 1:
        return frames[t // 2: t // 2 + 1]
    idx = np.linspace(0, t - 1, n).round().astype(int)
    return frames[idx]


def tile(frames: np.ndarray, max_side: int | None = None):
    """Frames ``(n, H, W, 3)`` tiled row-major into one PIL image, the long side at most ``max_side``."""
    from PIL import Image

    n, h, w, _ = frames.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = frames[i]
    img = Image.fromarray(grid)
    if max_side and max(img.size) > max_side:
        s = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.BICUBIC)
    return img


class CaptionerError(Exception):
    """The captioning model directory is missing or unusable."""


class Captioner:
    def __init__(self, path: str | Path, device: str = "auto", dtype: str = "auto", prompt: str = DEFAULT_PROMPT,
                 max_new_tokens: int = 128, frames: int = 1, max_side: int | None = 768,
                 model_id: str | None = None):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from ..sdedit.wan import resolve_device, resolve_dtype

        path = Path(path)
        if not (path / "config.json").is_file():
            raise CaptionerError(f"captioning model directory {path} not found (no config.json)")
        self.path = str(path)
        self.model_id = model_id or path.name
        self.synthetic = is_tiny(path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.prompt, self.max_new_tokens, self.frames, self.max_side = prompt, max_new_tokens, frames, max_side
        self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        tok = getattr(self.processor, "tokenizer", None)
        if tok is not None:
            tok.padding_side = "left"       # batched generation with a decoder-only language model
        self.model = AutoModelForImageTextToText.from_pretrained(
            path, dtype=self.dtype, local_files_only=True).to(self.device).eval()
        self.text = self._prompt_text()

    def _prompt_text(self) -> str:
        if getattr(self.processor, "chat_template", None):
            msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}]
            return self.processor.apply_chat_template(msgs, add_generation_prompt=True)
        return self.prompt

    def caption(self, clips: list[np.ndarray]) -> list[str]:
        """One caption per clip (uint8 ``(T, H, W, 3)``), in one batched ``generate``."""
        import torch

        if not clips:
            return []
        images = [tile(pick_frames(c, self.frames), self.max_side) for c in clips]
        inputs = self.processor(images=images, text=[self.text] * len(images), return_tensors="pt", padding=True)
        inputs = {k: (v.to(self.device, self.dtype) if torch.is_floating_point(v) else v.to(self.device))
                  for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [" ".join(s.split()) for s in self.processor.batch_decode(new, skip_special_tokens=True)]

    def describe(self) -> dict:
        return {"model_id": self.model_id, "synthetic": self.synthetic, "frames": self.frames,
                "max_new_tokens": self.max_new_tokens, "prompt": self.prompt,
                "dtype": str(self.dtype).replace("torch.", "")}
