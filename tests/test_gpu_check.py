"""bench/gpu_check.py --tiny: the GPU check's own code, run on CPU with tiny models so it cannot rot
before a GPU runs it. Its FLOP count is checked against PyTorch's FLOP counter."""
from __future__ import annotations

import json
import sys

import pytest

from conftest import REPO

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("pyiqa")
sys.path.insert(0, str(REPO / "bench"))
import gpu_check  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_check")
    docs = tmp / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nkept text\n")
    rc = gpu_check.main(["--tiny", "--json", str(tmp / "gpu_check.json"), "--docs", str(docs)])
    return rc, json.loads((tmp / "gpu_check.json").read_text()), docs.read_text()


def test_every_part_runs_and_reports(tiny_run):
    rc, res, _ = tiny_run
    assert rc == 0, {k: v.get("error") for k, v in res["parts"].items()}
    assert list(res["parts"]) == ["sdedit", "scorers", "train", "hr_vae"]
    assert res["machine"]["cpus"] and res["machine"]["torch"] and res["tiny"] is True

    sd = res["parts"]["sdedit"]
    runs = {(r["variant"], r["k"]): r for r in sd["runs"]}
    assert set(runs) == {("datakit", 2), ("datakit_batched", 2), ("diffusers", 2), ("datakit", 3), ("diffusers", 3)}
    for (variant, k), r in runs.items():
        assert r["s_per_clip"] > 0 and r["vae_encode_s"] > 0 and r["vae_decode_s"] > 0
        # guidance 5: datakit runs cond + uncond as one call per step, diffusers as two
        assert r["transformer_calls"] == (2 * k if variant == "diffusers" else k)
    assert runs[("datakit_batched", 2)]["clips"] == 2 and "estimated_gib" in runs[("datakit", 2)]
    # the same clip, seed and k: datakit's 8-bit x' is diffusers' float x' rounded (at most half a level)
    assert all(d <= 0.5 / 255 + 1e-6 for d in sd["max_abs_diff_vs_diffusers"].values())

    sc = res["parts"]["scorers"]["metrics"]
    assert sc["musiq"]["clips_per_s"] > 0 and sc["clipiqa"]["clips_per_s"] > 0 and sc["musiq"]["finite"]
    assert sc["dover"]["clips_per_s"] > 0 and sc["dover"]["views_s_per_clip_cpu"] > 0
    assert "skipped" in sc["qalign"] or sc["qalign"]["clips_per_s"] > 0

    tr = res["parts"]["train"]
    assert [s["frames"] for s in tr["stages"]] == [5, 9] and tr["gradient_checkpointing"]
    for s in tr["stages"]:
        assert s["s_per_step"] > 0 and s["tokens"] > 0 and s["model_tflops_per_step"] >= 0 and s["loss"] > 0
    assert [r["latent"] for r in res["parts"]["hr_vae"]["runs"]] == [[2, 4, 6], [3, 4, 6]]


def test_the_docs_section_is_written_in_place(tiny_run):
    _, _, docs = tiny_run
    assert docs.startswith("# Benchmarks\n\nkept text\n")
    assert docs.count("<!-- gpu-check:start -->") == 1 and docs.rstrip().endswith("<!-- gpu-check:end -->")
    for heading in ("## GPU check", "### SDEdit: datakit vs diffusers", "### Scorers", "### Trainer", "### Tiled VAE"):
        assert heading in docs
    assert "no GPU (CPU only)" in docs and "--tiny" in docs


def test_flop_count_equals_pytorchs_flop_counter():
    from diffusers import WanTransformer3DModel
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from datakit.sdedit import tiny as wan_tiny

    cfg = dict(wan_tiny.TINY_TRANSFORMER)
    model = WanTransformer3DModel(**cfg).eval()
    for frames, h, w, text_len in ((9, 32, 48, 16), (21, 64, 64, 32)):
        counter = FlopCounterMode(display=False)
        # the math attention path is made of matmuls the counter sees
        with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            model(hidden_states=torch.randn(1, 16, 1 + (frames - 1) // 4, h // 8, w // 8),
                  timestep=torch.tensor([500]), encoder_hidden_states=torch.randn(1, text_len, 32))
        ours = gpu_check.transformer_flops(gpu_check.tokens_of(frames, h, w, cfg), text_len, cfg)
        assert ours == pytest.approx(counter.get_total_flops(), rel=1e-9)


def test_without_a_gpu_the_full_check_says_how_to_run(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gpu_check.main([]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert gpu_check.peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.4
    assert gpu_check.peak_tflops("NVIDIA H100 PCIe", None) == 756.0 and gpu_check.peak_tflops("Tesla T4", 65.0) == 65.0
