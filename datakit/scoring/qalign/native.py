"""Q-Align's method on a transformers-native vision-language model.

Any directory ``AutoModelForImageTextToText`` and ``AutoProcessor`` load (LLaVA 1.5 /
NeXT, Qwen2-VL, Idefics3, ...). The user turn shows the image (one image per sampled frame
for a video) and asks the Q-Align question; the assistant turn is opened with the processor's
chat template and continued with "The quality of the image is"; the logits of the next
token over the rating words' first tokens give the score. A rating word's token is the
one the tokenizer produces for it right after that answer text (so leading-space
conventions of BPE and SentencePiece vocabularies are both handled).

Frames are padded to a square with the processor's mean colour when its processor
centre-crops (as Q-Align does), so nothing of the frame is cut away.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .prompts import RATING_WORDS, Task, answer_prefix, pad_to_square, question


class NativeVLM:
    name = "transformers"

    def __init__(self, path: str | Path, device, dtype):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.path = Path(path)
        self.device, self.dtype = device, dtype
        self.processor = AutoProcessor.from_pretrained(self.path, local_files_only=True)
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.tokenizer is None:
            raise ValueError(f"{self.path}: the processor has no tokenizer")
        self.tokenizer.padding_side = "left"          # every prompt ends at the last position
        self.model = AutoModelForImageTextToText.from_pretrained(
            self.path, dtype=dtype, local_files_only=True).to(device).eval()
        ip = getattr(self.processor, "image_processor", None)
        mean = getattr(ip, "image_mean", None) or (0.5, 0.5, 0.5)
        self.fill = tuple(int(m * 255) for m in mean) if getattr(ip, "do_center_crop", False) else None
        self.rating_ids = {task: [self.word_id(task, w) for w in RATING_WORDS] for task in ("quality", "aesthetics")}

    def word_id(self, task: Task, word: str) -> int:
        """The token the tokenizer gives ``word`` when it follows the answer text."""
        tok = self.tokenizer
        base = tok(answer_prefix(task, "image"), add_special_tokens=False).input_ids
        full = tok(f"{answer_prefix(task, 'image')} {word}", add_special_tokens=False).input_ids
        if full[: len(base)] == base and len(full) > len(base):
            return int(full[len(base)])
        ids = tok(f" {word}", add_special_tokens=False).input_ids or tok(word, add_special_tokens=False).input_ids
        if not ids:
            raise ValueError(f"{self.path}: the tokenizer gives no token for {word!r}")
        return int(ids[0])

    def _text(self, task: Task, kind: str, n_images: int) -> str:
        p = self.processor
        if getattr(p, "chat_template", None):
            content = [{"type": "image"}] * n_images + [{"type": "text", "text": question(task, kind)}]
            head = p.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
            return f"{head} {answer_prefix(task, kind)}" if not head.endswith((" ", "\n")) else \
                head + answer_prefix(task, kind)
        image_token = getattr(p, "image_token", "<image>")
        return f"USER: {question(task, kind)}\n{image_token * n_images}\nASSISTANT: {answer_prefix(task, kind)}"

    def _images(self, frames: Sequence[np.ndarray]):
        from PIL import Image

        return [Image.fromarray(pad_to_square(np.ascontiguousarray(f), self.fill) if self.fill else
                                np.ascontiguousarray(f)) for f in frames]

    def _logits(self, images, texts: list[str], task: Task) -> np.ndarray:
        import torch

        inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True)
        inputs = {k: (v.to(self.device, self.dtype) if torch.is_floating_point(v) else v.to(self.device))
                  for k, v in inputs.items()}
        with torch.inference_mode():
            logits = self.model(**inputs).logits[:, -1, self.rating_ids[task]]
        return logits.float().cpu().numpy()

    def image_logits(self, frames: Sequence[np.ndarray], task: Task) -> np.ndarray:
        return self._logits(self._images(frames), [self._text(task, "image", 1)] * len(frames), task)

    def video_logits(self, videos: Sequence[Sequence[np.ndarray]], task: Task) -> np.ndarray:
        images = [self._images(v) for v in videos]
        return self._logits(images, [self._text(task, "video", len(v)) for v in videos], task)

    def describe(self) -> dict:
        return {"backend": self.name, "architecture": type(self.model).__name__,
                "dtype": str(self.dtype).replace("torch.", ""), "rating_token_ids": self.rating_ids["quality"]}
