"""The batched engine under ablation and patching: replace activations, many variants per pass.

    run = trace(model, tokens, capture=["blocks.1.attn.hook_z"])     # one plain pass, kept
    edits = [[Edit(Component("head", 1, 0), zeros)], [Edit(Component("head", 0, 0), zeros)]]
    values = run_edits(model, run, edits, scorer)                   # (2,) metric per variant

Every intervention here is "replace component C's activation (at some positions) with a
given tensor": zero, mean and resample ablation give the tensor from reference data,
patching gives the other prompt's activation. A list of variants (each a list of edits)
is run by stacking copies of the batch, one per variant, with hooks that edit a different
copy for each variant. A pass starts at the first block any of its variants touches, from
the residual stream of the plain run, so the layers below are computed once. Hooks live
only for the duration of a pass (``model.hooks``).
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, Sequence, get_args

import torch

from birthlens.errors import BirthlensError
from birthlens.probes.components import EMBED_LAYER, Component
from birthlens.probes.page_reuse import keep_freed_memory
from birthlens.probes.prompts import model_device

ComputeDtype = Literal["float32", "bfloat16"]
COMPUTE_DTYPES: tuple[str, ...] = get_args(ComputeDtype)
UNKNOWN_DTYPE_ERR = "unknown compute dtype {value!r}; choose one of " + ", ".join(COMPUTE_DTYPES)

# A pass stacks as many copies of the batch as fit this many bytes of activations. Kept
# modest on purpose: past 32 MiB per tensor glibc maps fresh pages for every activation
# of every block whatever ``keep_freed_memory`` asks (on a SmolLM2 sweep, 6% more wall
# time with 768 MiB), and bigger passes gain nothing once the matrix products are a few
# thousand rows.
DEFAULT_MEMORY = 256 * 2**20


@contextmanager
def compute_dtype(model, dtype: str | None = None):
    """Run the forward passes inside under ``torch.autocast`` to ``dtype`` ("bfloat16"), or as
    the model is ("float32" or None).

    On CPUs with bfloat16 matrix units this makes a SmolLM2 sweep about 1.8x faster, at the
    price of metric values that move by about 0.01 nats; use the same dtype for everything
    you compare.
    """
    if dtype not in (None, *COMPUTE_DTYPES):
        raise BirthlensError(UNKNOWN_DTYPE_ERR.format(value=dtype))
    if dtype in (None, "float32"):
        yield
        return
    with torch.autocast(device_type=model_device(model).type, dtype=getattr(torch, dtype)):
        yield


def describe_prompts(scorer, dtype: str | None, **extra) -> dict:
    """A result's ``data``: the scorer's prompts, then ``extra``, then the compute dtype
    when it is not float32 (so float32 results read as before the option existed)."""
    described = {**scorer.pair.describe(), **extra}
    if dtype not in (None, "float32"):
        described["compute_dtype"] = dtype
    return described


@dataclass(frozen=True)
class Edit:
    """Replace ``component``'s activation with ``value`` at ``positions`` (None: all of them).

    ``value`` broadcasts against the component's activation for one copy of the batch,
    (batch, pos, d) with d = d_head for a head: (1, pos, d) is a per-position mean, (1, 1, d)
    a mean over positions, a 0-dim tensor a constant.
    """

    component: Component
    value: torch.Tensor
    positions: torch.Tensor | None = None  # 1-D long indices into the position axis


@dataclass
class Trace:
    """A plain forward pass, kept so edited passes can start in the middle of the model."""

    tokens: torch.Tensor
    resid_pre: list[torch.Tensor]  # the residual stream entering each block
    final: torch.Tensor  # after the last block, before the final norm
    attention_mask: torch.Tensor | None
    shortformer_pos_embed: torch.Tensor | None
    captured: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]


def _keep(store: dict, name: str | None = None):
    def hook(act, hook):
        store[name or hook.name] = act.detach().clone()

    return hook


@torch.inference_mode()
def trace(model, tokens: torch.Tensor, capture: Iterable[str] = ()) -> Trace:
    """Run ``tokens`` once, keeping every block's input, the final residual and ``capture``d hooks."""
    n_layers = model.cfg.n_layers
    captured: dict[str, torch.Tensor] = {}
    resid: dict[str, torch.Tensor] = {}
    hooks = [(f"blocks.{layer}.hook_resid_pre", _keep(resid)) for layer in range(n_layers)]
    hooks += [(name, _keep(captured)) for name in sorted(set(capture))]
    with model.hooks(fwd_hooks=hooks):
        # The same pass as model(tokens), split so the embedding's outputs can be kept.
        embedded, _, shortformer, mask = model.input_to_embed(tokens)
        final = model(embedded, start_at_layer=0, stop_at_layer=n_layers, attention_mask=mask, shortformer_pos_embed=shortformer)
    return Trace(
        tokens=tokens,
        resid_pre=[resid[f"blocks.{layer}.hook_resid_pre"] for layer in range(n_layers)],
        final=final,
        attention_mask=mask,
        shortformer_pos_embed=shortformer,
        captured=captured,
    )


def _writable(act: torch.Tensor) -> torch.Tensor:
    # Broadcast views (stride 0) cannot be written in place.
    if any(stride == 0 and size > 1 for stride, size in zip(act.stride(), act.shape)):
        return act.clone()
    return act


def _apply(target: torch.Tensor, edit: Edit) -> None:
    value = edit.value.to(device=target.device, dtype=target.dtype)
    if edit.positions is None:
        target[...] = value
    else:
        positions = edit.positions.to(target.device)
        target[:, positions] = value if value.dim() < 2 or value.shape[1] == 1 else value[:, positions]


def _editing_hook(items: list[tuple[int, Edit]], batch: int):
    def hook(act, hook):
        act = _writable(act)
        for start, edit in items:
            copy = act[start : start + batch]
            head = edit.component.head
            _apply(copy if head is None else copy[:, :, head], edit)
        return act

    return hook


def start_layer(edits: Sequence[Edit], n_layers: int) -> int:
    """The first block a variant changes (EMBED_LAYER for the embedding, n_layers for none)."""
    return min((edit.component.layer for edit in edits), default=n_layers)


def _repeat(tensor: torch.Tensor | None, times: int) -> torch.Tensor | None:
    if tensor is None or times == 1:
        return tensor
    return tensor.repeat(times, *([1] * (tensor.dim() - 1)))


@torch.inference_mode()
def edited_final(model, base: Trace, variants: Sequence[Sequence[Edit]]) -> torch.Tensor:
    """Final residual streams of the variants stacked: (len(variants) * batch, pos, d_model)."""
    n_layers, batch, copies = model.cfg.n_layers, base.batch_size, len(variants)
    start = min(start_layer(v, n_layers) for v in variants)
    if start >= n_layers:
        return _repeat(base.final, copies)
    by_hook: dict[str, list[tuple[int, Edit]]] = defaultdict(list)
    for index, variant in enumerate(variants):
        for edit in variant:
            by_hook[edit.component.hook_name].append((index * batch, edit))
    hooks = [(name, _editing_hook(items, batch)) for name, items in by_hook.items()]
    with model.hooks(fwd_hooks=hooks):
        if start == EMBED_LAYER:
            return model(_repeat(base.tokens, copies), stop_at_layer=n_layers)
        return model(
            _repeat(base.resid_pre[start], copies),
            start_at_layer=start,
            stop_at_layer=n_layers,
            attention_mask=_repeat(base.attention_mask, copies),
            shortformer_pos_embed=_repeat(base.shortformer_pos_embed, copies),
        )


def bytes_per_copy(model, batch: int, seq_len: int) -> int:
    """A rough peak of activation memory for one copy of the batch inside one block."""
    cfg = model.cfg
    per_token = 3 * cfg.n_heads * seq_len + 8 * cfg.d_model + 3 * (cfg.d_mlp or 0) + 4 * cfg.n_heads * cfg.d_head
    return 4 * batch * seq_len * per_token


def copies_per_pass(model, batch: int, seq_len: int, memory: int | None = None) -> int:
    return max(1, (memory or DEFAULT_MEMORY) // bytes_per_copy(model, batch, seq_len))


def passes(starts: Sequence[int], copies: int) -> list[list[int]]:
    """Variant indices grouped into passes: variants that start at the same block share
    passes of at most ``copies``, split evenly (9 heads at 7 a pass: 5 + 4, not 7 + 2)."""
    by_start: dict[int, list[int]] = defaultdict(list)
    for index, start in enumerate(starts):
        by_start[start].append(index)
    groups = []
    for start in sorted(by_start):
        members = by_start[start]
        n_passes = -(-len(members) // copies)
        size = -(-len(members) // n_passes)
        groups += [members[i : i + size] for i in range(0, len(members), size)]
    return groups


def run_edits(
    model,
    base: Trace,
    variants: Sequence[Sequence[Edit]],
    scorer: Callable[[torch.Tensor, int], torch.Tensor],
    copies: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """(len(variants),) metric of each variant, at most ``copies`` variants per forward pass.

    A pass holds variants that start at the same block, so none of them recomputes a block
    it does not change.
    """
    keep_freed_memory()  # pass after pass allocates the same activations: reuse their pages
    if copies is None:
        copies = copies_per_pass(model, base.batch_size, base.tokens.shape[1])
    starts = [start_layer(variant, model.cfg.n_layers) for variant in variants]
    values = torch.empty(len(variants), dtype=torch.float64)
    for group in passes(starts, copies):
        final = edited_final(model, base, [variants[i] for i in group])
        values[group] = scorer(final, len(group)).double()
        if progress is not None:
            progress(len(group))
    return values


@torch.inference_mode()
def capture(model, tokens: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """The activations at hook ``names`` of one plain pass over ``tokens`` (no unembedding)."""
    store: dict[str, torch.Tensor] = {}
    model.run_with_hooks(tokens, return_type=None, fwd_hooks=[(name, _keep(store)) for name in sorted(set(names))])
    return store


def component_activation(acts: dict[str, torch.Tensor], component: Component) -> torch.Tensor:
    """(batch, pos, d) activation of one component from ``capture``d hooks."""
    act = acts[component.hook_name]
    return act if component.head is None else act[:, :, component.head]
