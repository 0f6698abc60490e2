"""Re-record the DOVER reference data in this folder by running the official implementation.

    python tests/data/record_dover_reference.py /path/to/VQAssessment-DOVER-checkout

Needs torch, timm and einops; the official package's video readers (decord, scikit-video)
are stubbed, and the ImageNet download of its ConvNeXt constructor is switched off (only
the architecture matters). Writes dover_keys_*.tsv, dover_golden.json and
dover_golden_views.json next to this script. Not run by the test suite.
"""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL_ARGS = {
    "dover": dict(backbone=dict(technical=dict(type="swin_tiny_grpb", checkpoint=True, pretrained=None),
                                aesthetic=dict(type="conv_tiny")),
                  backbone_preserve_keys="technical,aesthetic", divide_head=True,
                  vqa_head=dict(in_channels=768, hidden_channels=64)),                     # dover.yml, divide.yml
    "mobile": dict(backbone=dict(technical=dict(type="conv_femto"), aesthetic=dict(type="conv_femto")),
                   backbone_preserve_keys="technical,aesthetic", divide_head=True,
                   vqa_head=dict(in_channels=384, hidden_channels=32)),                    # dover-mobile.yml
}


def official(checkout: str):
    sys.path.insert(0, checkout)
    dec = types.ModuleType("decord")
    dec.VideoReader = dec.cpu = dec.gpu = object
    dec.bridge = types.SimpleNamespace(set_bridge=lambda *a: None)
    sk = types.ModuleType("skvideo")
    sk.io = types.ModuleType("skvideo.io")
    sys.modules.update({"decord": dec, "skvideo": sk, "skvideo.io": sk.io})
    import dover.models.conv_backbone as cb
    import dover.models.evaluator as ev

    tiny = cb.convnext_3d_tiny
    ev.convnext_3d_tiny = lambda pretrained=False, **kw: tiny(pretrained=False, **kw)
    from dover.datasets.dover_datasets import UnifiedFrameSampler, get_spatial_fragments
    from dover.models import DOVER

    return DOVER, UnifiedFrameSampler, get_spatial_fragments


def main(checkout: str) -> None:
    import torch

    sys.path.insert(0, str(HERE.parent))
    from dover_golden_inputs import (CASES, VIEW_CASES, decode_fragment_offsets, deterministic_inputs,
                                     deterministic_state_dict, position_coded_clip)

    DOVER, Sampler, fragments = official(checkout)
    for name, arch, yml in (("dover", "dover", "dover.yml; divide.yml, used for DOVER++, has the same model args"),
                            ("dover_mobile", "mobile", "dover-mobile.yml")):
        sd = DOVER(**MODEL_ARGS[arch]).state_dict()
        lines = [f"# state-dict keys, shapes and dtypes of the official DOVER architecture ({name}), one per line",
                 f"# recorded from VQAssessment/DOVER: DOVER(**model.args of {yml}).state_dict()"]
        lines += [f"{k}\t{'x'.join(map(str, v.shape)) or 'scalar'}\t{v.dtype}" for k, v in sd.items()]
        (HERE / f"dover_keys_{name}.tsv").write_text("\n".join(lines) + "\n")

    gold = {}
    for name, case in CASES.items():
        m = DOVER(**MODEL_ARGS[case["arch"]]).eval()
        m.load_state_dict(deterministic_state_dict(m.state_dict()), strict=True)
        xt, xa = deterministic_inputs(case)
        with torch.no_grad():
            t, a = m({"technical": xt, "aesthetic": xa})
        gold[name] = {"technical": t.mean().item(), "aesthetic": a.mean().item()}
    (HERE / "dover_golden.json").write_text(json.dumps(gold, indent=2))

    import numpy as np

    mean = torch.tensor([123.675, 116.28, 103.53])
    std = torch.tensor([58.395, 57.12, 57.375])
    opt = dict(fragments_h=7, fragments_w=7, fsize_h=32, fsize_w=32, aligned=32)
    views = {}
    for name, case in VIEW_CASES.items():
        clip = position_coded_clip(case)
        np.random.seed(case["seed"])
        torch.manual_seed(case["seed"])
        ti = Sampler(32, 3, 2)(len(clip))
        ai = Sampler(1, 32, 2, 1)(len(clip))
        tv = fragments(torch.from_numpy(clip)[ti].permute(3, 0, 1, 2), **opt)
        tv = ((tv.permute(1, 2, 3, 0) - mean) / std).permute(3, 0, 1, 2).reshape(3, 3, -1, 224, 224).transpose(0, 1)
        rec = {"technical_indices": ti.tolist(), "aesthetic_indices": ai.tolist(),
               "technical_view_mean": tv.double().mean().item(), "technical_view_abs_mean": tv.double().abs().mean().item()}
        if case["height"] >= 224 and case["width"] >= 224:
            rec["fragment_offsets"] = decode_fragment_offsets(tv)
        views[name] = rec
    (HERE / "dover_golden_views.json").write_text(json.dumps(views))


if __name__ == "__main__":
    main(sys.argv[1])
