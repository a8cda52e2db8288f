"""Random tiny JoyAI-Image checkpoints in the real on-disk layout, for tests and integrators.

:func:`write_tiny_checkpoint` writes every component of the real diffusers-layout checkpoint
(``model_index.json`` + processor, scheduler, text_encoder, tokenizer, transformer, vae) with the same
classes and file formats, only a few thousand random parameters each. Loading it exercises exactly the
code that loads the ~50 GB model; a full understand + imagine round takes seconds on a CPU. The
outputs are noise, of course: tests check shapes, prompts, determinism and error handling, not content.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Special tokens Qwen3-VL's processor and the JoyAI-Image pipeline templates rely on.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")

#: A minimal Qwen-style chat template: system/user/assistant turns, images as vision tokens.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: model_index.json of the real checkpoint: component -> (library, class).
MODEL_INDEX = {
    "_class_name": "JoyImageEditPipeline",
    "processor": ["transformers", "Qwen3VLProcessor"],
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "Qwen3VLForConditionalGeneration"],
    "tokenizer": ["transformers", "Qwen2Tokenizer"],
    "transformer": ["diffusers", "JoyImageEditTransformer3DModel"],
    "vae": ["diffusers", "AutoencoderKLWan"],
}


def _tiny_tokenizer():
    """A byte-level Qwen2 tokenizer (256 byte tokens, no merges) plus the Qwen-VL special tokens."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {char: i for i, char in enumerate(bytes_to_unicode().values())}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token="<|endoftext|>", eos_token="<|im_end|>",
                               pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


#: The two ways a processor folder stores its image settings (see ``checkpoint.REQUIRED_FILES``).
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def write_tiny_checkpoint(path: str | Path, seed: int = 0,
                          processor_file: str = "preprocessor_config.json") -> Path:
    """Writes a random tiny JoyAI-Image checkpoint in the real diffusers layout.

    Args:
        path: folder to write (created; existing component files are overwritten).
        seed: seed of the random weights; the same seed writes the same weights.
        processor_file: ``"preprocessor_config.json"`` (the Edit layout: flat image-processor settings) or
            ``"processor_config.json"`` (the Edit-Plus layout: settings nested under ``"image_processor"``,
            no preprocessor_config.json).

    Returns:
        The checkpoint folder, ready for ``WorldModel.load("joyai-image", path=..., device="cpu",
        dtype="float32")``.
    """
    import diffusers
    import torch
    from diffusers import (AutoencoderKLWan, FlowMatchEulerDiscreteScheduler,
                           JoyImageEditTransformer3DModel)
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    if processor_file not in PROCESSOR_FILES:
        raise ValueError(f"processor_file: expected one of {PROCESSOR_FILES}, got {processor_file!r}")
    root = Path(path).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_tokenizer()
    token_id = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}

    torch.manual_seed(seed)
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
            # mrope sections (t, h, w) must sum to head_dim / 2.
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2],
                             "mrope_interleaved": True}),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64,
                           deepstack_visual_indexes=[1], num_position_embeddings=64, in_channels=3),
        image_token_id=token_id["<|image_pad|>"], video_token_id=token_id["<|video_pad|>"],
        vision_start_token_id=token_id["<|vision_start|>"], vision_end_token_id=token_id["<|vision_end|>"])
    text_encoder = Qwen3VLForConditionalGeneration(config).eval()
    text_encoder.generation_config.eos_token_id = token_id["<|im_end|>"]
    text_encoder.generation_config.pad_token_id = token_id["<|endoftext|>"]
    text_encoder.save_pretrained(root / "text_encoder")

    # patch 16 x merge 2 = 32 px per vision token; keep images small so a CPU round takes seconds.
    image_processor = Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, temporal_patch_size=2,
                                               min_pixels=32 * 32, max_pixels=128 * 128)
    image_processor.save_pretrained(root / "processor")
    if processor_file == "processor_config.json":
        flat = root / "processor" / "preprocessor_config.json"
        settings = json.loads(flat.read_text(encoding="utf-8"))
        nested = {"image_processor": settings, "processor_class": "Qwen3VLProcessor"}
        (root / "processor" / "processor_config.json").write_text(json.dumps(nested, indent=2) + "\n",
                                                                  encoding="utf-8")
        flat.unlink()
    tokenizer.save_pretrained(root / "processor")
    tokenizer.save_pretrained(root / "tokenizer")

    # Sum of rope_dim_list = attention head dim (32 / 2 heads).
    JoyImageEditTransformer3DModel(patch_size=[1, 2, 2], in_channels=16, hidden_size=32, num_attention_heads=2,
                                   text_dim=64, num_layers=2, rope_dim_list=[4, 6, 6]
                                   ).save_pretrained(root / "transformer")
    AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                     temperal_downsample=[False, True, True]).save_pretrained(root / "vae")
    FlowMatchEulerDiscreteScheduler(shift=1.5).save_pretrained(root / "scheduler")

    index = {"_class_name": MODEL_INDEX["_class_name"], "_diffusers_version": diffusers.__version__,
             **{k: v for k, v in MODEL_INDEX.items() if not k.startswith("_")}}
    (root / "model_index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return root
