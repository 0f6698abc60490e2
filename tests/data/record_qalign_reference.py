"""Re-record the Q-Align reference data in this folder by running the official implementation.

    python tests/data/record_qalign_reference.py /path/to/Q-Future-Q-Align-checkout

The official code pins transformers 4.36.1 (tokenizers 0.15, huggingface_hub < 0.21) and
imports icecream; run this with an interpreter that has those (and torch, numpy, pillow,
sentencepiece, safetensors). It builds a tiny mPLUG-Owl2 with the official classes from
TINY_CONFIG in tests/qalign_golden_inputs.py, loads the deterministic weights, saves it with
``save_pretrained`` beside the checked-in tiny tokenizer, then loads it back the way the
official scorers do (``load_pretrained_model``: float16 on the CPU, eager attention as
under the pinned torch 2.0.1) and records:

- the rating-word ids and the prompt ids the official code builds;
- the preprocessed pixels' statistics (``expand2square`` + ``CLIPImageProcessor``);
- the official ``QAlignScorer`` / ``QAlignAestheticScorer`` / ``QAlignVideoScorer`` outputs
  (float16, 0..1 weights as in scorer.py);
- the logits over the five rating words at the last position in float32 (the checkpoint
  loaded in float32, the same inputs and official preprocessing), for a tight comparison;
- the frames the official ``load_video`` picks (decord stubbed with a frame counter);
- the state-dict keys and shapes of the full-size architecture (official MPLUGOwl2Config
  defaults = one-align), built on the meta device.

Writes qalign_golden.json and qalign_keys_one_align.tsv next to this script. The
official model constructor loads its tokenizer from the hub id "q-future/one-align"; the
script works in a temporary folder holding ``q-future/one-align`` so that id resolves to
the tiny directory, and sets HF_HUB_OFFLINE. Not run by the test suite.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pixel_stats(t) -> dict:
    return {"shape": list(t.shape), "sum": float(t.double().sum()), "sumsq": float((t.double() ** 2).sum()),
            "probe": [float(v) for v in t.reshape(-1)[:: max(1, t.numel() // 16)][:16]]}


def main(checkout: str) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, checkout)
    import numpy as np
    import torch
    from PIL import Image
    from qalign_golden_inputs import (PREPROCESS_SIZE, PROMPTS, TINY_CONFIG, TOKENIZER, VIDEO_SAMPLING,
                                      deterministic_state_dict, golden_images, golden_videos)

    work = Path(tempfile.mkdtemp())
    tiny = work / "q-future" / "one-align"
    tiny.mkdir(parents=True)
    shutil.copyfile(TOKENIZER, tiny / "tokenizer.model")
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    (tiny / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": False,
         "model_max_length": 2048, **specials}))
    (tiny / "special_tokens_map.json").write_text(json.dumps(specials))
    (tiny / "preprocessor_config.json").write_text(json.dumps(
        {"crop_size": PREPROCESS_SIZE, "do_center_crop": True, "do_normalize": True, "do_resize": True,
         "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
         "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": PREPROCESS_SIZE}))
    os.chdir(work)

    import transformers
    import transformers.modeling_utils

    # The official requirements pin torch 2.0.1, under which transformers 4.36 runs the eager
    # attention (its SDPA path in modeling_llama2.py calls a helper it never imports): make
    # transformers see no SDPA so newer torch builds take the same path.
    transformers.modeling_utils.is_torch_sdpa_available = lambda: False
    from q_align.evaluate import scorer as official
    from q_align.model.configuration_mplug_owl2 import MPLUGOwl2Config
    from q_align.model.modeling_mplug_owl2 import MPLUGOwl2LlamaForCausalLM

    cfg = {k: v for k, v in TINY_CONFIG.items() if k != "model_type"}
    model = MPLUGOwl2LlamaForCausalLM(MPLUGOwl2Config(**cfg)).eval()
    model.load_state_dict(deterministic_state_dict(model.state_dict()), strict=True)
    model.save_pretrained(str(tiny))
    del model

    gold: dict = {"official": "Q-Future/Q-Align 14dfdff", "transformers": transformers.__version__}
    images = [Image.fromarray(a) for a in golden_images()]
    videos = [[Image.fromarray(a) for a in v] for v in golden_videos()]
    scorers = {("quality", "image"): official.QAlignScorer, ("aesthetics", "image"): official.QAlignAestheticScorer,
               ("quality", "video"): official.QAlignVideoScorer}
    # float32: the saved checkpoint loaded in float32 (the scorers' float16 load rounds weights
    # and rotary tables; these logits are the full-precision reference)
    m32 = MPLUGOwl2LlamaForCausalLM.from_pretrained(str(tiny), torch_dtype=torch.float32).eval()
    for task, kind in PROMPTS:
        s = scorers[(task, kind)](pretrained=str(tiny), device="cpu")
        key = f"{task}_{kind}"
        gold.setdefault("attn_implementation", s.model.config._attn_implementation)
        gold.setdefault("rating_ids", list(map(int, s.preferential_ids_)))
        gold[f"input_ids_{key}"] = s.input_ids[0].tolist()
        fill = tuple(int(x * 255) for x in s.image_processor.image_mean)
        if kind == "image":
            gold[f"scores_fp16_{key}"] = [float(v) for v in s(images)]
            px = s.image_processor.preprocess([s.expand2square(i, fill) for i in images],
                                              return_tensors="pt")["pixel_values"]
            if key == "quality_image":
                gold["pixels"] = [pixel_stats(p) for p in px]
            with torch.inference_mode():
                logits = m32(s.input_ids.repeat(px.shape[0], 1), images=px)["logits"][:, -1, s.preferential_ids_]
        else:
            gold[f"scores_fp16_{key}"] = [float(s([v])[0]) for v in videos]
            rows = []
            with torch.inference_mode():
                for v in videos:
                    px = s.image_processor.preprocess([s.expand2square(f, fill) for f in v],
                                                      return_tensors="pt")["pixel_values"]
                    rows.append(m32(s.input_ids, images=[px])["logits"][0, -1, s.preferential_ids_])
            logits = torch.stack(rows)
        gold[f"logits_fp32_{key}"] = logits.tolist()
        del s

    # the official 1-fps video frame sampling, with decord replaced by a frame counter
    picked = {}

    class Reader:
        def __init__(self, n, fps):
            self.n, self.fps = n, fps

        def __len__(self):
            return self.n

        def get_avg_fps(self):
            return self.fps

        def get_batch(self, idx):
            picked["idx"] = list(map(int, idx))
            return types.SimpleNamespace(asnumpy=lambda: np.zeros((len(idx), 2, 2, 3), np.uint8))

    gold["video_sampling"] = []
    for n, fps in VIDEO_SAMPLING:
        sys.modules["decord"] = types.SimpleNamespace(VideoReader=lambda path, n=n, fps=fps: Reader(n, fps))
        picked.clear()
        try:
            official.load_video("unused.mp4")
            gold["video_sampling"].append({"frames": n, "fps": fps, "indices": picked.get("idx", [])})
        except Exception as e:  # noqa: BLE001 - e.g. no whole second in the clip
            gold["video_sampling"].append({"frames": n, "fps": fps, "indices": picked.get("idx", []),
                                           "error": type(e).__name__})

    with torch.device("meta"):
        full = MPLUGOwl2LlamaForCausalLM(MPLUGOwl2Config())
    lines = ["# state-dict keys, shapes and dtypes of the official mPLUG-Owl2 architecture at its default",
             "# config (one-align), recorded from Q-Future/Q-Align: MPLUGOwl2LlamaForCausalLM(MPLUGOwl2Config())"]
    lines += [f"{k}\t{'x'.join(map(str, v.shape))}\t{v.dtype}" for k, v in full.state_dict().items()]
    (HERE / "qalign_keys_one_align.tsv").write_text("\n".join(lines) + "\n")
    (HERE / "qalign_golden.json").write_text(json.dumps(gold, indent=1) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1])
