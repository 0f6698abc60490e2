"""A tiny, randomly initialised LLaVA captioner (real transformers classes, local directory).

``LlavaForConditionalGeneration`` (CLIP vision tower + Llama language model at toy sizes) and
a ``LlavaProcessor`` (``CLIPImageProcessor``, a word-level fast tokenizer, a chat template),
saved with ``save_pretrained`` so :class:`datakit.captioning.Captioner` loads it through
``AutoProcessor`` / ``AutoModelForImageTextToText`` like a real LLaVA directory. Its captions
are random words; it exists to run the captioning path end to end.
"""
from __future__ import annotations

from pathlib import Path

from .. import tiny

#: a LLaVA-1.5-style conversation: "USER: <image>\n... ASSISTANT:"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | upper }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{{ '\\n' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
TINY_IMAGE = 32
TINY_PATCH = 8


def write_tiny_captioner(dest: str | Path, seed: int = 0, words=tiny.CAPTION_WORDS) -> Path:
    """Write the tiny LLaVA captioner into ``dest`` (created) and return ``dest``; ``words`` is its vocabulary."""
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tiny.word_tokenizer(specials, template="<s> $A", words=words),
        pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>", padding_side="left",
        model_max_length=512)
    image_processor = CLIPImageProcessor(size={"shortest_edge": TINY_IMAGE},
                                         crop_size={"height": TINY_IMAGE, "width": TINY_IMAGE})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=TINY_PATCH,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=CHAT_TEMPLATE)
    n_image_tokens = (TINY_IMAGE // TINY_PATCH) ** 2
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                              image_size=TINY_IMAGE, patch_size=TINY_PATCH, projection_dim=16)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-2,
                         image_seq_length=n_image_tokens)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.save_pretrained(dest, safe_serialization=True)
    processor.save_pretrained(dest)
    tiny.mark(dest, "llava", {"image_size": TINY_IMAGE, "patch_size": TINY_PATCH, "seed": seed})
    return dest
