"""Pretrained models from a GGUF file, a local Hugging Face folder, or a TransformerLens name.

    model = load_gguf("models/SmolLM2-135M-Instruct.Q4_1.gguf")   # dequantised, converted, cached
    model = load_hf_folder("models/pythia-70m")                   # config.json + weights
    model = load_tl_name("gpt2")                                  # needs the Hugging Face hub

Each returns a HookedTransformer with layer norm folded and weights centred, the way
TransformerLens prepares its own models, and with the source's tokenizer attached.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch

from birthlens.errors import BirthlensError
from birthlens.models.cache import cached_model, sha256_file
from birthlens.models.convert import hf_to_hooked, hooked_config

GGUF_MAGIC = b"GGUF"
OFFLINE_SPECS = "smollm2-135m, a training run folder, a checkpoint .safetensors, a .gguf file or a local Hugging Face folder"
HUB_UNREACHABLE = (
    "cannot load TransformerLens model {name!r}: the Hugging Face hub is unreachable (offline?) "
    "and the model is not in the local Hugging Face cache; use an offline spec instead: " + OFFLINE_SPECS
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def load_gguf(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
):
    """A Llama-family GGUF file as a HookedTransformer; the conversion is cached by the file's SHA-256."""
    path = check_gguf(path)
    if not use_cache:
        return convert_gguf(path, dtype=dtype).to(device, print_details=False)
    entry = gguf_entry_name(sha256_file(path), dtype)
    return cached_model(entry, lambda: convert_gguf(path, dtype=dtype), cache_dir, device)


def gguf_entry_name(sha256: str, dtype: torch.dtype) -> str:
    return f"{sha256}-{str(dtype).removeprefix('torch.')}"


def check_gguf(path: str | os.PathLike) -> Path:
    """``path`` if it is a readable file that starts like a GGUF file; BirthlensError otherwise."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BirthlensError(f"GGUF file not found: {path}")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise BirthlensError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if magic != GGUF_MAGIC:
        raise BirthlensError(f"{path} is not a GGUF file (it does not start with {GGUF_MAGIC!r})")
    return path


def convert_gguf(path: Path, dtype: torch.dtype = torch.float32, name: str | None = None):
    """Dequantise a GGUF file with transformers and convert it with TransformerLens (no cache)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(path.parent), path.name
    try:
        hf_config = AutoConfig.from_pretrained(folder, gguf_file=filename)
    except Exception as exc:  # the GGUF parser raises many types on a damaged file
        if "not supported" in str(exc):  # transformers cannot dequantise this architecture
            raise BirthlensError(f"{path}: {_describe(exc)}") from exc
        raise BirthlensError(f"{path} cannot be read as a GGUF model; truncated or corrupt? ({_describe(exc)})") from exc
    hooked_config(hf_config, source=str(path))  # fail before the slow dequantisation
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        hf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, config=hf_config, dtype=torch.float32)
    except Exception as exc:
        raise BirthlensError(f"{path} has a readable header but its tensors or tokenizer cannot be loaded; truncated or corrupt? ({_describe(exc)})") from exc
    return hf_to_hooked(hf_model, tokenizer, name=name or path.stem, dtype=dtype)


def load_hf_folder(path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """A local Hugging Face model folder (config.json + weights) as a HookedTransformer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise BirthlensError(f"{path} is not a Hugging Face model folder (no config.json)")
    try:
        hf_config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise BirthlensError(f"{path}/config.json cannot be read ({_describe(exc)})") from exc
    hooked_config(hf_config, source=str(path))
    tokenizer = None
    try:
        if any((path / name).is_file() for name in TOKENIZER_FILES):
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        hf_model = AutoModelForCausalLM.from_pretrained(
            str(path), config=hf_config, dtype=torch.float32, local_files_only=True
        )
    except Exception as exc:
        raise BirthlensError(f"cannot load the model in {path} ({_describe(exc)})") from exc
    return hf_to_hooked(hf_model, tokenizer, name=path.name, device=device, dtype=dtype)


def is_tl_name(name: str) -> bool:
    """Whether ``name`` is in TransformerLens's official model list (aliases included)."""
    from transformer_lens.loading_from_pretrained import make_model_alias_map

    return name.lower() in make_model_alias_map()


def load_tl_name(name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """``HookedTransformer.from_pretrained(name)``; a one-line BirthlensError when the hub is out of reach."""
    from transformer_lens import HookedTransformer

    if not is_tl_name(name):
        raise BirthlensError(f"{name!r} is not in TransformerLens's list of official model names")
    offline = offline_requested() or not hub_reachable()
    try:
        # Offline mode lets a model already in the Hugging Face cache load at once,
        # instead of after a minute of connection retries.
        with hub_offline(offline), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model = HookedTransformer.from_pretrained(name, device="cpu", dtype=torch.float32)
    except Exception as exc:
        if offline:
            raise BirthlensError(HUB_UNREACHABLE.format(name=name)) from exc
        raise BirthlensError(f"cannot load TransformerLens model {name!r} ({_describe(exc)})") from exc
    if dtype != torch.float32:
        model = model.to(dtype, print_details=False)
    return model.to(device, print_details=False)


def offline_requested() -> bool:
    """Whether the user asked for offline mode (read now, not at import time as huggingface_hub does)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any((v or "").upper() in ("1", "ON", "YES", "TRUE") for v in flags)


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the Hugging Face endpoint (assumed reachable behind a proxy)."""
    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def hub_offline(enabled: bool):
    """Put huggingface_hub in offline mode for the duration of the block."""
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = previous or enabled
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
