"""One clip in, its SDEdit x' out: what ``datakit sdedit`` runs, for inspection and debugging."""
from __future__ import annotations

from .. import media
from .editor import Item, SDEditor, SDEditParams


def sdedit_clip(uri: str, model_dir: str, params: SDEditParams, seed: int = 0, prompt: str | None = None,
                start: float = 0.0, frames: int | None = 77, device: str = "auto", dtype: str = "auto",
                model_id: str | None = None, max_sequence_length: int = 512,
                on_step=None, vae_tiling=None, memory_budget_gb: float | None = None) -> tuple[bytes, dict]:
    """SDEdit ``frames`` frames (default 77, at most what the video has) from ``start`` seconds.

    ``on_step`` is called after every denoising step (for a progress bar). ``vae_tiling`` (a
    :class:`~datakit.sdedit.vae.VaeTiling`) tiles the VAE; ``memory_budget_gb`` caps what the
    call may use besides the model (default: the device's free memory).
    ``prompt`` defaults to the video's sidecar caption (``NAME.txt`` / ``NAME.json``), else empty.
    Returns x' as a lossless mp4 at the base resolution and a json-ready document of every
    setting. Raises ``ValueError`` for bad arguments, ``media.MediaError`` for unreadable input,
    ``ModelError`` for an unusable model directory and ``memory.DoesNotFit`` when the clip
    cannot fit in memory (the message says what it needs and what to change).
    """
    from ..stages.caption import read_sidecar
    from .base import load_model
    from .memory import DoesNotFit

    if start < 0 or (frames is not None and frames < 1):
        raise ValueError("--start must not be negative and --frames must be at least 1")
    params.resolved_range()                      # ValueError for a bad k / k range
    info = media.probe(uri)
    if start >= info.duration_s:
        raise ValueError(f"--start {start:g}s is past the end of the clip ({info.duration_s:.3g}s)")
    avail = max(1, int(round((info.duration_s - start) * info.fps)))
    n = min(frames or avail, avail)
    hr = media.read_span(uri, info.start_time + start, n, info.fps)
    caption_source = "argument"
    if prompt is None:
        prompt = read_sidecar(uri, ["caption", "text", "prompt"])
        caption_source = "sidecar" if prompt else "none"
        prompt = prompt or ""
    model = load_model(model_dir, device=device, dtype=dtype, model_id=model_id,
                       max_sequence_length=max_sequence_length, vae_tiling=vae_tiling)
    if on_step is not None:                      # one call of the denoiser per SDEdit step
        def hook(*_):                            # returns None: a hook's return value replaces the output
            on_step()

        model.transformer.register_forward_hook(hook)
    item = SDEditor(model, params, memory_budget_gb).run([Item(hr, prompt, seed)])[0]
    if item.reason:
        raise DoesNotFit(item.error)
    data = media.encode(item.out, info.fps, lossless=True, preset="veryfast")
    doc = {"input": uri, "start": start, "fps": info.fps, "frames": n, "hr": [int(hr.shape[2]), int(hr.shape[1])],
           "caption": prompt, "caption_source": caption_source, "sdedit": item.record}
    if model.synthetic:
        doc["synthetic_models"] = True
    return data, doc
