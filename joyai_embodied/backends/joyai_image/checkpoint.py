"""Finding and checking a JoyAI-Image checkpoint folder (diffusers layout) before anything is loaded.

Checks are cheap (file existence and small JSON reads) and report every problem at once, so a user with
a 50 GB download learns what is wrong in milliseconds, not after minutes of loading.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ...errors import CheckpointError

#: Files each component folder must hold; a tuple of alternatives means any one of them will do.
#: The processor's image settings come either from ``preprocessor_config.json`` (older transformers,
#: and the Edit layout) or nested under ``"image_processor"`` in ``processor_config.json`` (transformers
#: 5 and the published Edit-Plus layout, which ships only that file); transformers reads either.
REQUIRED_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "processor": (("preprocessor_config.json", "processor_config.json"),),
    "scheduler": (("scheduler_config.json",),),
    "text_encoder": (("config.json",),),
    "tokenizer": (("tokenizer_config.json",),),
    "transformer": (("config.json",),),
    "vae": (("config.json",),),
}
WEIGHTED = ("text_encoder", "transformer", "vae")

#: Transformer config keys of snapshots older than upstream's config rename -> today's names. diffusers
#: ignores unknown keys, so such a config silently builds the class defaults (20 layers, 24 heads,
#: theta 256) instead of the 40-layer model the weights belong to.
LEGACY_TRANSFORMER_KEYS = {
    "heads_num": "num_attention_heads",
    "mm_double_blocks_depth": "num_layers",
    "text_states_dim": "text_dim",
    "rope_theta": "theta",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Turns ``path`` (a folder, or a hub id already in the local cache) into a checkpoint folder.

    Raises:
        CheckpointError: the folder does not exist, or ``path`` is a hub id with no local copy.
    """
    text = os.path.expandvars(os.path.expanduser(str(path)))
    folder = Path(text)
    if folder.is_dir():
        return folder
    if _HUB_ID.match(text) and not text.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(text, local_files_only=True))  # cache lookup only, never fetches
        except Exception as exc:
            raise CheckpointError(
                f"checkpoint {text!r} looks like a hub id, but no local copy was found. Weights are never "
                f"downloaded at run time: download them first (see models/README.md) and pass the folder "
                f"as path=") from exc
    raise CheckpointError(f"checkpoint folder {text!r} does not exist (see models/README.md for the layout)")


def check_checkpoint(folder: Path) -> None:
    """Checks that ``folder`` holds every component of the diffusers layout, with current config names.

    Raises:
        CheckpointError: listing every missing file or folder at once; or naming the legacy keys of a
            transformer config written before upstream's rename (with the names to use instead).
    """
    folder = Path(folder)
    missing = [] if (folder / "model_index.json").is_file() else ["model_index.json"]
    for component, requirements in REQUIRED_FILES.items():
        if not (folder / component).is_dir():
            missing.append(f"{component}/")
            continue
        for alternatives in requirements:
            if not any((folder / component / name).is_file() for name in alternatives):
                missing.append(" or ".join(f"{component}/{name}" for name in alternatives))
        if component in WEIGHTED and not any((folder / component).glob("*.safetensors")):
            missing.append(f"{component}/*.safetensors (weights)")
    if missing:
        raise CheckpointError(f"checkpoint {str(folder)!r} is incomplete; missing: {', '.join(missing)}. "
                              f"Expected the diffusers layout: model_index.json + {'/, '.join(REQUIRED_FILES)}/")
    check_transformer_config(folder / "transformer" / "config.json")


def check_transformer_config(path: Path) -> None:
    """Refuses a transformer ``config.json`` that uses the pre-rename key names.

    Raises:
        CheckpointError: the file is not a JSON object, or it has legacy keys (all of them are named,
            each with its current name).
    """
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"transformer config {str(path)!r} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"transformer config {str(path)!r} is not a JSON object")
    legacy = [key for key in LEGACY_TRANSFORMER_KEYS if key in config]
    if legacy:
        renames = ", ".join(f"{key!r} -> {LEGACY_TRANSFORMER_KEYS[key]!r}" for key in legacy)
        raise CheckpointError(
            f"transformer config {str(path)!r} uses key names from before the upstream config rename "
            f"({renames}); diffusers would ignore them and build a default-sized model (20 layers, theta 256) "
            f"that does not match the weights. Download the current snapshot, or rename those keys in the file")


def image_only_processor(folder: Path):
    """Qwen3-VL processor without its video part (that part needs torchvision, which is not required here).

    Reads the image settings from ``preprocessor_config.json`` or, failing that, from the nested
    ``image_processor`` entry of ``processor_config.json`` (transformers resolves both).
    """
    from transformers import AutoTokenizer, Qwen3VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(folder, local_files_only=True)
    return ImageOnlyQwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                                     chat_template=tokenizer.chat_template)
