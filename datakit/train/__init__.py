"""The bundled UniMMVSR trainer (paper §3.2, §3.4, §4.1, A.3; SPEC §7).

* :mod:`.config` — training configs (``pipelines/train_*.yaml``): stages, optimizer, objective,
  augmentation, checkpoints, workers;
* :mod:`.model` — the UniMMVSR denoiser around diffusers' ``WanTransformer3DModel``;
* :mod:`.rope` — 3-D RoPE with per-token temporal indices (target / ID images / reference video);
* :mod:`.data` — shard index, step-indexed sampler, item loading and reference augmentation;
* :mod:`.cache` — the latent cache (``datakit cache-latents``) and items read from it;
* :mod:`.trainer` — flow-matching objective, the training loop, Ray Train for several workers (DDP or FSDP2);
* :mod:`.checkpoint` — safetensors checkpoints with optimizer state (plain or sharded per worker), resume;
* :mod:`.control` — stop requests (Ctrl-C, ``OUTPUT/STOP``): a checkpoint of the finished step, exit 130;
* :mod:`.infer` — upscaling with independent text/reference CFG and the reference guidance threshold;
* :mod:`.sampler` — the configurable flow-matching sampler ``upscale`` uses (why not the paper's PNDM).

The base model (VAE, text encoder, tokenizer, scheduler, T2V transformer) is loaded with
:func:`datakit.sdedit.load_model`, the loader the SDEdit stage uses. Heavy imports happen
only when these modules are imported.
"""
