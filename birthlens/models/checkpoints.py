"""Toy-model checkpoints: one safetensors file per step, written atomically.

    save_checkpoint(path, model, toy_config, step=400, optimizer=opt)
    model = load_checkpoint_model(find_checkpoint(Path("runs/quick"), step=400))

A checkpoint holds every model parameter (``model.<name>``), the optimizer's state
tensors (``optim.<param>.<state>``) and, in the safetensors header, a JSON document with
the step, the model config and the optimizer's scalar state. One file per checkpoint
means one atomic rename: a checkpoint either exists whole or not at all.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from transformer_lens import HookedTransformer

from birthlens.errors import BirthlensError
from birthlens.models.toy import ToyConfig, build_toy_model

CHECKPOINT_DIR = "checkpoints"
METADATA_KEY = "birthlens"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.safetensors$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def list_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Step -> checkpoint path for every complete checkpoint of a run, sorted by step."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def find_checkpoint(run_dir: Path, step: int | None = None) -> Path:
    """The checkpoint of ``run_dir`` at ``step`` (the latest when ``step`` is None)."""
    available = list_checkpoints(run_dir)
    if not available:
        raise BirthlensError(f"{run_dir} holds no checkpoints (expected {Path(run_dir) / CHECKPOINT_DIR}/step_*.safetensors)")
    if step is None:
        return available[max(available)]
    if step not in available:
        steps = ", ".join(str(s) for s in available)
        raise BirthlensError(f"{run_dir} has no checkpoint at step {step}; available steps: {steps}")
    return available[step]


def save_checkpoint(
    path: Path,
    model: HookedTransformer,
    toy_config: ToyConfig,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict | None = None,
) -> None:
    """Write model (and optimizer) state to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{name}": p.detach().cpu().contiguous() for name, p in model.named_parameters()}
    optimizer_scalars = {}
    if optimizer is not None:
        names = {id(p): name for name, p in model.named_parameters()}
        for param, state in optimizer.state.items():
            for key, value in state.items():
                if torch.is_tensor(value) and value.dim() > 0:
                    tensors[f"optim.{names[id(param)]}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalar = value.item() if torch.is_tensor(value) else value
                    optimizer_scalars[f"{names[id(param)]}.{key}"] = scalar
    metadata = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "model_config": toy_config.to_dict(),
        "optimizer_scalars": optimizer_scalars,
        **(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(metadata)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a checkpoint file; a clear error if it is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise BirthlensError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = json.loads(header[METADATA_KEY])
        ToyConfig.from_dict(metadata["model_config"])
        int(metadata["step"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise BirthlensError(f"{path} is not a readable birthlens checkpoint ({type(exc).__name__}: {exc})") from exc
    return metadata, tensors


def load_checkpoint_model(path: Path, device: str | torch.device = "cpu") -> HookedTransformer:
    """The HookedTransformer saved in a checkpoint, with the exact saved weights."""
    metadata, tensors = read_checkpoint(path)
    model = build_toy_model(ToyConfig.from_dict(metadata["model_config"]), seed=0)
    load_model_state(model, tensors, path)
    model.birthlens_checkpoint = {"path": str(path), "step": int(metadata["step"])}
    return model.to(device, print_details=False)


def load_model_state(model: HookedTransformer, tensors: dict[str, torch.Tensor], source: Path) -> None:
    params = dict(model.named_parameters())
    saved = {key[len("model."):]: value for key, value in tensors.items() if key.startswith("model.")}
    if set(saved) != set(params):
        missing = sorted(set(params) - set(saved))
        extra = sorted(set(saved) - set(params))
        raise BirthlensError(f"{source} does not match its model config (missing {missing[:3]}, unexpected {extra[:3]})")
    with torch.no_grad():
        for name, param in params.items():
            if saved[name].shape != param.shape:
                raise BirthlensError(f"{source}: {name} has shape {tuple(saved[name].shape)}, expected {tuple(param.shape)}")
            param.copy_(saved[name])


def load_optimizer_state(optimizer: torch.optim.Optimizer, model: HookedTransformer, metadata: dict, tensors: dict) -> None:
    """Restore the optimizer state that ``save_checkpoint`` wrote, for an exact resume."""
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        state = {}
        prefix = f"optim.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                state[key[len(prefix):]] = value.to(param.device)
        for key, value in metadata.get("optimizer_scalars", {}).items():
            if key.startswith(f"{name}."):
                state[key[len(name) + 1:]] = torch.tensor(value, dtype=torch.float32)
        if state:
            optimizer.state[param] = state
