"""One entry point from a spec string to a HookedTransformer.

    load("runs/quick")            # a training run: its latest checkpoint
    load("runs/quick@400")        # ... the checkpoint at step 400
    load("runs/quick/checkpoints/step_00000400.safetensors")
    load("smollm2-135m")          # SmolLM2-135M-Instruct, offline after a one-time fetch
    load("models/tiny.Q4_0.gguf") # a Llama-family GGUF file
    load("models/pythia-70m")     # a local Hugging Face folder (config.json + weights)
    load("gpt2")                  # a TransformerLens name (needs the Hugging Face hub)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from birthlens.errors import BirthlensError

SMOLLM2_ALIAS = "smollm2-135m"
SPEC_KINDS = (
    "a training run folder (config.json + checkpoints/), optionally with @STEP (runs/quick@400); "
    "a checkpoint file (*.safetensors); smollm2-135m; a .gguf file; "
    "a local Hugging Face model folder (config.json + weights); a TransformerLens model name (gpt2, pythia-70m, ...)"
)
UNKNOWN_SPEC = "unknown model spec {spec!r}: expected " + SPEC_KINDS
DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "fp64": torch.float64, "double": torch.float64,
}  # fmt: skip
_STEP_SUFFIX = re.compile(r"^(?P<run>.+)@(?P<step>\d+)$")


def load(spec: str | os.PathLike, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None):
    """The model that ``spec`` names, as a HookedTransformer on ``device``.

    ``dtype`` None keeps a checkpoint's own precision and loads pretrained models in float32.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    text = str(spec).strip()
    path = Path(text).expanduser()

    if text.lower() == SMOLLM2_ALIAS:
        from birthlens.models.smollm2 import load_smollm2

        return load_smollm2(device=device, dtype=dtype or torch.float32)
    match = _STEP_SUFFIX.match(text)
    if match and not path.exists():
        run = Path(match["run"]).expanduser()
        if not is_run_folder(run):
            raise BirthlensError(f"{run} is not a training run folder (config.json + checkpoints/), so '@{match['step']}' cannot apply")
        return _load_toy(run, int(match["step"]), device, dtype)
    if path.is_file():
        return _load_file(path, device, dtype)
    if path.is_dir():
        return _load_folder(path, device, dtype)

    from birthlens.models.pretrained import is_tl_name, load_tl_name

    if is_tl_name(text):
        return load_tl_name(text, device=device, dtype=dtype or torch.float32)
    if path.suffix in (".gguf", ".safetensors") or os.sep in text or "/" in text or text.startswith((".", "~")):
        raise BirthlensError(f"no such file or folder: {path}")
    raise BirthlensError(UNKNOWN_SPEC.format(spec=text))


def is_run_folder(path: Path) -> bool:
    """A birthlens training run: ``checkpoints/`` next to a config.json that is not a Hugging Face config."""
    if not ((path / "checkpoints").is_dir() and (path / "config.json").is_file()):
        return False
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return True  # not a Hugging Face config either; the checkpoints carry their own
    return not (isinstance(config, dict) and ("model_type" in config or "architectures" in config))


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower().removeprefix("torch.")
    if name not in DTYPES:
        raise BirthlensError(f"unknown dtype {dtype!r}; choose one of {', '.join(sorted(DTYPES))}")
    return DTYPES[name]


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BirthlensError(f"unknown device {device!r} (try cpu, cuda, cuda:1, mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BirthlensError(f"device {device} requested but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise BirthlensError("device mps requested but MPS is not available here")
    return device


def _load_file(path: Path, device, dtype):
    if path.suffix == ".gguf":
        from birthlens.models.pretrained import load_gguf

        return load_gguf(path, device=device, dtype=dtype or torch.float32)
    if path.suffix == ".safetensors":
        from birthlens.models.checkpoints import load_checkpoint_model

        return _cast(load_checkpoint_model(path, device=device), dtype)
    raise BirthlensError(f"{path}: unsupported file type {path.suffix or '(none)'}; expected a .gguf or a checkpoint .safetensors file")


def _load_folder(path: Path, device, dtype):
    if is_run_folder(path):
        return _load_toy(path, None, device, dtype)
    if (path / "config.json").is_file():
        from birthlens.models.pretrained import load_hf_folder

        return load_hf_folder(path, device=device, dtype=dtype or torch.float32)
    raise BirthlensError(
        f"{path} is neither a training run folder (config.json + checkpoints/) nor a Hugging Face model folder (config.json + weights)"
    )


def _load_toy(run: Path, step: int | None, device, dtype):
    from birthlens.models.checkpoints import find_checkpoint, load_checkpoint_model

    return _cast(load_checkpoint_model(find_checkpoint(run, step), device=device), dtype)


def _cast(model, dtype):
    return model if dtype is None or dtype == model.cfg.dtype else model.to(dtype, print_details=False)
