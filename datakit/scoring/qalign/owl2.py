"""mPLUG-Owl2, the architecture of Q-Align's released ``one-align`` weights, in plain torch.

The released checkpoint (``q-future/one-align``) ships its architecture as remote code
written for transformers 4.36; it does not run on the transformers datakit installs (see
:data:`REMOTE_CODE_BLOCKERS`). This module rebuilds the same network so that the released
state dict loads unchanged (same keys, same shapes, strict):

- ``model.vision_model``: a ViT (448 px, 14 px patches, class token, learned positions,
  pre-norm blocks whose attention packs q/k/v per head, QuickGELU MLPs, final LayerNorm);
- ``model.visual_abstractor``: learned queries that cross-attend to ``[queries; image
  tokens]`` with fixed sin-cos positions on the keys (SwiGLU MLP with an inner LayerNorm),
  projected to the language width, plus an end-of-image token;
- ``model.layers``: a Llama-2 decoder whose key/value projections and both RMSNorms have
  one copy for text tokens and one for image tokens (``multiway.0`` / ``multiway.1``);
- ``lm_head``.

Only what scoring needs is built: a causal forward pass over a prompt with image tokens
spliced in at the image placeholder, returning the last position's logits. The numbers
follow the official code (float32 RMSNorm statistics, float32 attention softmax in the
decoder, rotary tables computed in float32), and tests compare the outputs with values
recorded from the official implementation (tests/data/record_qalign_reference.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: the placeholder id the official tokenisation puts where the image tokens go
IMAGE_TOKEN_INDEX = -200

#: why ``trust_remote_code`` cannot load one-align with the installed transformers (5.x):
#: the symbols its remote code imports or calls that transformers 5 removed, and its other
#: run-time requirements. ``datakit models`` and docs/ARCHITECTURE.md repeat this.
REMOTE_CODE_BLOCKERS = (
    "visual_encoder.py imports transformers.pytorch_utils.find_pruneable_heads_and_indices (removed in transformers 5)",
    "modeling_llama2.py subclasses LlamaFlashAttention2 / LlamaSdpaAttention and builds "
    "LlamaLinearScalingRotaryEmbedding / LlamaDynamicNTKScalingRotaryEmbedding (removed in transformers 5), "
    "and patches LlamaModel.forward with the tuple key-value cache of transformers 4.36",
    "the visual abstractor calls PreTrainedModel.invert_attention_mask (removed in transformers 5)",
    "every module imports the undeclared package icecream",
    "the model's constructor loads its tokenizer and image processor from the hub id "
    "'q-future/one-align', not from the directory being loaded",
)


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class VisionConfig:
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 448
    patch_size: int = 14
    layer_norm_eps: float = 1e-6


@dataclass(frozen=True)
class AbstractorConfig:
    num_learnable_queries: int = 64
    hidden_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 2816
    layer_norm_eps: float = 1e-6
    encoder_hidden_size: int = 1024
    grid_size: int = 32


@dataclass(frozen=True)
class Owl2Config:
    """The fields of a one-align ``config.json`` (model_type ``mplug_owl2``) the network needs.

    Defaults are those of the official ``MPLUGOwl2Config`` (LLaMA-2-7B with the mPLUG-Owl2
    vision side), which is what one-align uses.
    """

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = 32
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    attention_bias: bool = False
    bos_token_id: int = 1
    vision: VisionConfig = field(default_factory=VisionConfig)
    abstractor: AbstractorConfig = field(default_factory=AbstractorConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "Owl2Config":
        if d.get("model_type") != "mplug_owl2":
            raise ValueError(f"model_type {d.get('model_type')!r} is not mplug_owl2")
        if d.get("rope_scaling"):
            raise ValueError(f"rope_scaling {d['rope_scaling']!r} is not supported (one-align has none)")
        if d.get("hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act {d['hidden_act']!r} is not supported (Llama uses silu)")
        vis = (d.get("visual_config") or {}).get("visual_model") or {}
        abs_ = (d.get("visual_config") or {}).get("visual_abstractor") or {}

        def pick(dc, src):
            return dc(**{k: src[k] for k in dc.__dataclass_fields__ if src.get(k) is not None})

        heads = d.get("num_attention_heads", cls.num_attention_heads)
        top = {k: d[k] for k in cls.__dataclass_fields__ if k not in ("vision", "abstractor") and d.get(k) is not None}
        top.setdefault("num_key_value_heads", heads)
        return cls(**top, vision=pick(VisionConfig, vis), abstractor=pick(AbstractorConfig, abs_))

    def to_dict(self) -> dict:
        """A ``config.json`` in the official layout (what one-align's own config holds)."""
        from dataclasses import asdict

        d = {k: v for k, v in asdict(self).items() if k not in ("vision", "abstractor")}
        v, a = asdict(self.vision), asdict(self.abstractor)
        v.update(model_type="mplug_owl_vision_model", hidden_act="quick_gelu")
        a.update(model_type="mplug_owl_visual_abstract")
        d.update(model_type="mplug_owl2", architectures=["MPLUGOwl2LlamaForCausalLM"], hidden_act="silu",
                 rope_scaling=None, eos_token_id=2, visual_config={"visual_model": v, "visual_abstractor": a})
        return d


# ----------------------------------------------------------------------------- vision tower


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


class VisionEmbeddings(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.hidden_size))
        self.patch_embed = nn.Conv2d(3, c.hidden_size, c.patch_size, c.patch_size, bias=False)
        self.position_embedding = nn.Parameter(torch.zeros(1, (c.image_size // c.patch_size) ** 2 + 1, c.hidden_size))
        self.pre_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], 1, -1).to(x.dtype), x], dim=1)
        x = x + self.position_embedding[:, : x.shape[1]].to(x.dtype)
        return self.pre_layernorm(x)


class VisionAttention(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.heads = c.num_attention_heads
        self.query_key_value = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        hd = d // self.heads
        # packed per head: (..., head, [q k v], head_dim)
        qkv = self.query_key_value(x).reshape(b, n, self.heads, 3, hd).permute(3, 0, 2, 1, 4)
        scores = torch.matmul(qkv[0], qkv[1].transpose(-1, -2)) * hd ** -0.5
        ctx = torch.matmul(torch.softmax(scores, dim=-1), qkv[2]).permute(0, 2, 1, 3).reshape(b, n, d)
        return self.dense(ctx)


class VisionMLP(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.fc2 = nn.Linear(c.intermediate_size, c.hidden_size)

    def forward(self, x):
        return self.fc2(quick_gelu(self.fc1(x)))


class VisionLayer(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.self_attn = VisionAttention(c)
        self.input_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = VisionMLP(c)
        self.post_attention_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class VisionEncoder(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(VisionLayer(c) for _ in range(c.num_hidden_layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class VisionModel(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.encoder = VisionEncoder(c)
        self.post_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, pixels):
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))


# ----------------------------------------------------------------------------- visual abstractor


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """Fixed sin-cos embedding of 1-D positions: ``[sin(p w_k) ..., cos(p w_k) ...]``,
    ``w_k = 10000^(-k / (dim/2))``, computed in float32 as the released buffers were."""
    freq = 1.0 / np.float32(10000) ** (np.arange(dim // 2, dtype=np.float32) / np.float32(dim / 2))
    angles = np.outer(positions.reshape(-1).astype(np.float32), freq.astype(np.float32)).astype(np.float32)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(dim: int, grid: int) -> np.ndarray:
    """Row-major ``grid x grid`` positions, first half of each vector from the column index,
    second half from the row index, preceded by an all-zero row for the class token."""
    rows, cols = np.mgrid[0:grid, 0:grid].astype(np.float32)
    emb = np.concatenate([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], axis=1)
    return np.concatenate([np.zeros((1, dim)), emb], axis=0)


class AbstractorMLP(nn.Module):
    def __init__(self, c: AbstractorConfig):
        super().__init__()
        self.w1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.w2 = nn.Linear(c.intermediate_size, c.hidden_size)
        self.w3 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.ffn_ln = nn.LayerNorm(c.intermediate_size, eps=c.layer_norm_eps)

    def forward(self, x):
        return self.w2(self.ffn_ln(F.silu(self.w1(x)) * self.w3(x)))


class AbstractorCrossAttention(nn.Module):
    def __init__(self, c: AbstractorConfig):
        super().__init__()
        self.heads = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.encoder_hidden_size, c.hidden_size)
        self.value = nn.Linear(c.encoder_hidden_size, c.hidden_size)
        # persistent buffers: the released checkpoint stores them
        self.register_buffer("q_pos_embed", torch.from_numpy(
            sincos_1d(c.hidden_size, np.arange(c.num_learnable_queries, dtype=np.float32))).float())
        self.register_buffer("k_pos_embed", torch.from_numpy(sincos_2d(c.hidden_size, c.grid_size)).float())

    def _heads(self, x):
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3)

    def forward(self, queries: torch.Tensor, keys_in: torch.Tensor) -> torch.Tensor:
        pos = torch.cat([self.q_pos_embed, self.k_pos_embed], dim=0).unsqueeze(0).to(queries.dtype)
        k = self._heads(self.key(keys_in + pos))
        v = self._heads(self.value(keys_in))
        q = self._heads(self.query(queries + self.q_pos_embed.unsqueeze(0).to(queries.dtype)))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class AbstractorOutput(nn.Module):
    def __init__(self, c: AbstractorConfig):
        super().__init__()
        self.out_proj = nn.Linear(c.hidden_size, c.hidden_size)
        self.norm2 = nn.LayerNorm(c.hidden_size)
        self.mlp = AbstractorMLP(c)

    def forward(self, ctx, residual):
        x = residual + self.out_proj(ctx)
        return x + self.mlp(self.norm2(x))


class AbstractorBlock(nn.Module):
    """The released module path is ``crossattention.{attention,output,norm1,normk}``."""

    def __init__(self, c: AbstractorConfig):
        super().__init__()
        self.attention = AbstractorCrossAttention(c)
        self.output = AbstractorOutput(c)
        self.norm1 = nn.LayerNorm(c.hidden_size)
        self.normk = nn.LayerNorm(c.hidden_size)

    def forward(self, queries, image_tokens):
        q = self.norm1(queries)                       # the residual is the normalised queries
        kv = torch.cat([q, self.normk(image_tokens)], dim=1)
        return self.output(self.attention(q, kv), q)


class AbstractorLayer(nn.Module):
    def __init__(self, c: AbstractorConfig):
        super().__init__()
        self.crossattention = AbstractorBlock(c)

    def forward(self, queries, image_tokens):
        return self.crossattention(queries, image_tokens)


class AbstractorEncoder(nn.Module):
    def __init__(self, c: AbstractorConfig):
        super().__init__()
        self.layers = nn.ModuleList(AbstractorLayer(c) for _ in range(c.num_hidden_layers))


class VisualAbstractor(nn.Module):
    def __init__(self, c: AbstractorConfig, language_hidden: int):
        super().__init__()
        self.encoder = AbstractorEncoder(c)
        self.visual_fc = nn.Linear(c.hidden_size, language_hidden)
        self.query_embeds = nn.Parameter(torch.zeros(1, c.num_learnable_queries, c.hidden_size))
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, language_hidden))

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        x = self.query_embeds.repeat(image_tokens.shape[0], 1, 1)
        for layer in self.encoder.layers:
            x = layer(x, image_tokens)
        x = self.visual_fc(x)
        return torch.cat([x, self.vit_eos.repeat(x.shape[0], 1, 1)], dim=1)


# ----------------------------------------------------------------------------- language model


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x32 = x.to(torch.float32)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


class Multiway(nn.Module):
    """One module per modality (0 text, 1 image), applied to the tokens of its modality."""

    def __init__(self, make, n: int = 2):
        super().__init__()
        self.multiway = nn.ModuleList(make() for _ in range(n))

    def forward(self, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        out = None
        for i, module in enumerate(self.multiway):
            sel = modality == i
            if not bool(sel.any()):
                continue
            y = module(x[sel])
            if out is None:
                out = x.new_empty(x.shape[:-1] + y.shape[-1:])
            out[sel] = y
        return out


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class DecoderAttention(nn.Module):
    def __init__(self, c: Owl2Config):
        super().__init__()
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        kv = self.kv_heads * self.head_dim
        self.q_proj = nn.Linear(c.hidden_size, c.hidden_size, bias=c.attention_bias)
        self.k_proj = Multiway(lambda: nn.Linear(c.hidden_size, kv, bias=c.attention_bias))
        self.v_proj = Multiway(lambda: nn.Linear(c.hidden_size, kv, bias=c.attention_bias))
        self.o_proj = nn.Linear(c.hidden_size, c.hidden_size, bias=c.attention_bias)

    def forward(self, x, modality, cos, sin, mask):
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x, modality).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x, modality).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, -1)
        return self.o_proj(ctx)


class DecoderMLP(nn.Module):
    def __init__(self, c: Owl2Config):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c: Owl2Config):
        super().__init__()
        self.self_attn = DecoderAttention(c)
        self.mlp = DecoderMLP(c)
        self.input_layernorm = Multiway(lambda: RMSNorm(c.hidden_size, c.rms_norm_eps))
        self.post_attention_layernorm = Multiway(lambda: RMSNorm(c.hidden_size, c.rms_norm_eps))

    def forward(self, x, modality, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x, modality), modality, cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x, modality))


class Owl2Model(nn.Module):
    def __init__(self, c: Owl2Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.vision_model = VisionModel(c.vision)
        self.visual_abstractor = VisualAbstractor(c.abstractor, c.hidden_size)


class Owl2ForScoring(nn.Module):
    """mPLUG-Owl2 with the released state-dict layout; :meth:`last_logits` is all scoring needs."""

    def __init__(self, config: Owl2Config):
        super().__init__()
        self.config = config
        self.model = Owl2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` normalised pixels -> ``(N, queries + 1, hidden)`` language-side tokens."""
        return self.model.visual_abstractor(self.model.vision_model(pixels))

    def _rotary(self, n: int, dtype: torch.dtype):
        d = self.config.hidden_size // self.config.num_attention_heads
        inv = 1.0 / (self.config.rope_theta ** (torch.arange(0, d, 2, device=self.device).float() / d))
        freqs = torch.outer(torch.arange(n, device=self.device, dtype=torch.float32), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(dtype)[None, None], emb.sin().to(dtype)[None, None]

    def last_logits(self, input_ids: list[list[int]], image_tokens: list[torch.Tensor],
                    token_ids: list[int] | None = None) -> torch.Tensor:
        """Logits at the last position of each prompt.

        ``input_ids[i]`` holds :data:`IMAGE_TOKEN_INDEX` where ``image_tokens[i]`` (``(n_i,
        hidden)``, e.g. several frames' tokens concatenated) goes. Prompts of different
        lengths are right-padded and each is read at its own last token. ``token_ids``
        restricts the returned logits to those vocabulary entries.
        """
        embed = self.model.embed_tokens
        rows, mods = [], []
        for ids, img in zip(input_ids, image_tokens):
            parts, mod = [], []
            ids_t = torch.tensor(ids, device=self.device)
            cut = (ids_t == IMAGE_TOKEN_INDEX).nonzero().flatten().tolist()
            if len(cut) != 1:
                raise ValueError(f"a prompt needs exactly one image placeholder, found {len(cut)}")
            before, after = ids_t[: cut[0]], ids_t[cut[0] + 1:]
            img = img.to(embed.weight.dtype)
            for piece, m in ((embed(before), 0), (img, 1), (embed(after), 0)):
                parts.append(piece)
                mod.append(torch.full((piece.shape[0],), m, device=self.device, dtype=torch.long))
            rows.append(torch.cat(parts))
            mods.append(torch.cat(mod))
        lengths = [r.shape[0] for r in rows]
        n = max(lengths)
        x = torch.stack([F.pad(r, (0, 0, 0, n - r.shape[0])) for r in rows])
        modality = torch.stack([F.pad(m, (0, n - m.shape[0])) for m in mods])
        cos, sin = self._rotary(n, x.dtype)
        mask = torch.ones(n, n, dtype=torch.bool, device=self.device).tril()[None, None]
        for layer in self.model.layers:
            x = layer(x, modality, cos, sin, mask)
        last = x[torch.arange(len(rows), device=self.device), torch.tensor(lengths, device=self.device) - 1]
        last = self.model.norm(last)
        w = self.lm_head.weight if token_ids is None else self.lm_head.weight[token_ids]
        return last @ w.T


# ----------------------------------------------------------------------------- checkpoints

_OPTIONAL_KEYS = ("q_pos_embed", "k_pos_embed")          # recomputed when a checkpoint lacks them
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "rotary_emb.cos_cached", "rotary_emb.sin_cached")


def _checkpoint_files(path: Path) -> list[Path]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).is_file():
            names = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
            return [path / n for n in names]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (path / single).is_file():
            return [path / single]
    raise FileNotFoundError(f"{path}: no model.safetensors, pytorch_model.bin or a sharded index of them")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint directory (safetensors or torch pickles, sharded or not)."""
    sd: dict[str, torch.Tensor] = {}
    for f in _checkpoint_files(Path(path)):
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd.update(load_file(str(f)))
        else:
            sd.update(torch.load(f, map_location="cpu", weights_only=True, mmap=True))
    return sd


def load(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Owl2ForScoring:
    """Build the network from ``path/config.json`` and load its weights strictly.

    Raises ``ValueError`` naming the missing or unexpected keys when the checkpoint is not
    an mPLUG-Owl2 one.
    """
    path = Path(path)
    config = Owl2Config.from_dict(json.loads((path / "config.json").read_text()))
    with torch.device("meta"):
        model = Owl2ForScoring(config)
    sd = {k: v for k, v in read_state_dict(path).items() if not k.endswith(_IGNORED_SUFFIXES)}
    want = model.state_dict()
    missing = [k for k in want if k not in sd and not k.endswith(_OPTIONAL_KEYS)]
    unexpected = [k for k in sd if k not in want]
    if missing or unexpected:
        raise ValueError(f"{path}: not an mPLUG-Owl2 checkpoint of this config: "
                         f"{len(missing)} missing keys (e.g. {missing[:3]}), "
                         f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    ab = config.abstractor
    fresh = {"q_pos_embed": lambda: sincos_1d(ab.hidden_size, np.arange(ab.num_learnable_queries)),
             "k_pos_embed": lambda: sincos_2d(ab.hidden_size, ab.grid_size)}
    for k in want:                                    # buffers a checkpoint may lack: compute them
        if k not in sd:
            sd[k] = torch.from_numpy(fresh[k.rsplit(".", 1)[-1]]()).float()
    # each tensor goes to its device and dtype on its own: no second full copy in host memory
    model.load_state_dict({k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)
                           for k, v in sd.items()}, strict=True, assign=True)
    return model.eval()


def save(model: Owl2ForScoring, dest: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` in the released layout."""
    from safetensors.torch import save_file

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(dest / "model.safetensors"))
    return dest
