"""On-disk cache of converted models: one folder per entry, written atomically, verified on read.

    model = cached_model(f"{sha256}-float32", build=lambda: convert(path), device="cpu")

An entry holds ``weights.safetensors`` (the HookedTransformer's parameters),
``config.json`` (its HookedTransformerConfig), ``tokenizer/`` (when it has one) and
``manifest.json`` (format version, size and SHA-256 of the weights). An entry that fails
any check (truncated file, unreadable header, hash mismatch, wrong keys) is rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

CACHE_ENV = "BIRTHLENS_CACHE"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"
MANIFEST_FILE = "manifest.json"

log = logging.getLogger("birthlens")


class CorruptEntry(Exception):
    """A cache entry that exists but cannot be trusted."""


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir``, else $BIRTHLENS_CACHE, else the user's cache directory."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "birthlens"


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``final``; on success it becomes ``final`` in one rename.

    Readers never see a half-written folder: either the old one, none, or the new one.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.exists():
                raise
            # Another process finished the same entry first; theirs is as good as ours.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_model(
    name: str,
    build: Callable[[], Any],
    cache_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
):
    """The model stored under ``name``, or ``build()`` saved there first.

    A corrupt entry is logged and rebuilt; a cache that cannot be written only costs speed.
    """
    folder = cache_root(cache_dir) / "converted" / name
    if folder.exists():
        try:
            return read_entry(folder, device)
        except CorruptEntry as exc:
            log.warning("birthlens: cache entry %s is corrupt (%s); rebuilding it", folder, exc)
    model = build()
    try:
        write_entry(folder, model)
    except OSError as exc:
        log.warning("birthlens: could not write cache entry %s (%s)", folder, exc)
    return model.to(device, print_details=False)


def write_entry(folder: Path, model) -> None:
    """Save ``model`` as the cache entry ``folder``, atomically."""
    from safetensors.torch import save_file

    tensors = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters()}
    with atomic_folder(folder) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(config_to_dict(model.cfg), indent=1))
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        manifest = {
            "format_version": FORMAT_VERSION,
            "weights_bytes": (tmp / WEIGHTS_FILE).stat().st_size,
            "weights_sha256": sha256_file(tmp / WEIGHTS_FILE),
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))


def read_entry(folder: Path, device: str | torch.device = "cpu"):
    """The HookedTransformer stored in ``folder``; raises CorruptEntry if any check fails."""
    try:
        return _read_entry(folder, device)
    except CorruptEntry:
        raise
    except Exception as exc:  # anything wrong with our own cache means: rebuild it
        raise CorruptEntry(f"{type(exc).__name__}: {_first_line(exc)}") from exc


def _read_entry(folder: Path, device: str | torch.device):
    from safetensors.torch import load as load_safetensors
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CorruptEntry(f"format version {manifest.get('format_version')}, expected {FORMAT_VERSION}")
    data = (folder / WEIGHTS_FILE).read_bytes()
    if len(data) != manifest["weights_bytes"]:
        raise CorruptEntry(f"weights file has {len(data)} bytes, expected {manifest['weights_bytes']}")
    if hashlib.sha256(data).hexdigest() != manifest["weights_sha256"]:
        raise CorruptEntry("weights file SHA-256 does not match the manifest")
    tensors = load_safetensors(data)
    del data
    cfg = HookedTransformerConfig.from_dict(config_from_dict(json.loads((folder / CONFIG_FILE).read_text())))
    tokenizer = None
    if (folder / TOKENIZER_DIR).is_dir():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(cfg, tokenizer, move_to_device=False)
    params = dict(model.named_parameters())
    if set(params) != set(tensors):
        raise CorruptEntry(f"parameter names differ from the config ({len(tensors)} stored, {len(params)} expected)")
    for key, value in tensors.items():
        if value.shape != params[key].shape:
            raise CorruptEntry(f"{key} has shape {tuple(value.shape)}, expected {tuple(params[key].shape)}")
    # assign: adopt the freshly read tensors instead of copying into untouched memory (2 s for SmolLM2).
    model.load_state_dict(tensors, strict=False, assign=True)
    return model.to(device, print_details=False)


def config_to_dict(cfg) -> dict:
    """A HookedTransformerConfig as JSON-ready values (dtype as its name, device left out)."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    values["dtype"] = str(cfg.dtype).removeprefix("torch.")
    values.pop("device", None)
    return values


def config_from_dict(values: dict) -> dict:
    values = dict(values)
    values["dtype"] = getattr(torch, values["dtype"])
    values["device"] = "cpu"
    return values


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
