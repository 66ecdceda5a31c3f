"""Hugging Face causal LM -> HookedTransformer, processed the way TransformerLens processes its own models.

    cfg = hooked_config(hf_config)                      # fails fast on unsupported architectures
    model = hf_to_hooked(hf_model, tokenizer, name="SmolLM2-135M-Instruct")

TransformerLens's ``from_pretrained`` only takes names from its official list, but its
config conversion accepts a local folder holding a config.json, and its weight
conversions take a loaded Hugging Face model. We write the config to a scratch folder
and reuse both, then fold layer norm and centre weights as ``from_pretrained`` does.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch

from birthlens.errors import BirthlensError

UNSUPPORTED_ARCHITECTURE = (
    "{source}: architecture {architecture} is not one TransformerLens can convert "
    "(supported include Llama, Mistral, Qwen2, GPT-2, GPT-NeoX, GPT-J, OPT, Gemma, Phi)"
)


def architecture_of(hf_config) -> str:
    """The model class name, which TransformerLens dispatches on (GGUF configs leave it out)."""
    if getattr(hf_config, "architectures", None):
        return hf_config.architectures[0]
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(hf_config.model_type, f"<{hf_config.model_type}>")


def hooked_config(hf_config, source: str = "model", device: str | torch.device = "cpu"):
    """The HookedTransformerConfig (layer norm folded) for ``hf_config``; BirthlensError if unsupported."""
    with tempfile.TemporaryDirectory(prefix="birthlens-convert-") as scratch:
        return _hooked_config(Path(scratch), hf_config, source, device)


def hf_to_hooked(
    hf_model,
    tokenizer=None,
    name: str = "model",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
):
    """A HookedTransformer with ``hf_model``'s weights, processed in float32, then cast to ``dtype``."""
    from transformer_lens import HookedTransformer
    from transformer_lens import loading_from_pretrained as loading
    from transformer_lens.utilities.activation_functions import softcap_enabled
    from transformer_lens.utilities.architectures import POST_NORM_ARCHITECTURES

    hf_model.eval()  # loaded in float32 by the callers; quantised configs refuse .float()
    with tempfile.TemporaryDirectory(prefix="birthlens-convert-") as scratch:
        cfg = _hooked_config(Path(scratch), hf_model.config, name, "cpu")
        # get_pretrained_state_dict needs the (local) model name to exist as a path.
        with torch.no_grad():
            state_dict = loading.get_pretrained_state_dict(scratch, cfg, hf_model, dtype=torch.float32)
    cfg.model_name = name
    cfg.tokenizer_name = None  # the tokenizer is attached below, never fetched by name

    # Same choices as HookedTransformer.from_pretrained: fold layer norm unless it cannot
    # be folded (post-norm, shortformer), centre unless that changes the output.
    shortformer = cfg.positional_embedding_type == "shortformer"
    post_norm = cfg.original_architecture in POST_NORM_ARCHITECTURES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # HookedTransformer is TL 3.x's deprecated class by choice
        model = HookedTransformer(cfg, tokenizer, move_to_device=False)
    model.load_and_process_state_dict(
        state_dict,
        fold_ln=cfg.normalization_type in ("LNPre", "RMSPre"),
        center_writing_weights=not (shortformer or post_norm),
        center_unembed=not (shortformer or softcap_enabled(cfg.output_logits_soft_cap)),
        fold_value_biases=True,
    )
    if dtype != torch.float32:
        model = model.to(dtype, print_details=False)
    return model.to(device, print_details=False)


def _hooked_config(scratch: Path, hf_config, source: str, device):
    from transformer_lens import loading_from_pretrained as loading

    architecture = architecture_of(hf_config)
    hf_config.architectures = [architecture]
    if architecture == "GPT2LMHeadModel" and not hasattr(hf_config, "n_ctx"):
        # TransformerLens reads GPT-2's old n_ctx, which transformers 5 no longer sets.
        hf_config.n_ctx = hf_config.n_positions
    # A scratch folder, not the user's: TransformerLens picks the architecture by
    # substrings such as "llama" or "gemma" in the name when it finds them.
    hf_config.to_json_file(str(scratch / "config.json"))
    try:
        return loading.get_pretrained_model_config(
            str(scratch), hf_cfg=hf_config.to_dict(), fold_ln=True, device=device, dtype=torch.float32
        )
    except NotImplementedError as exc:
        raise BirthlensError(UNSUPPORTED_ARCHITECTURE.format(source=source, architecture=architecture)) from exc
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise BirthlensError(
            f"{source}: TransformerLens cannot convert its {architecture} config ({type(exc).__name__}: {exc})"
        ) from exc
