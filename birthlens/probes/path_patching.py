"""Path patching: change a sender head's output only where it enters a receiver head's input.

    result = path_patch(toy, senders=["0.0"], receivers=["1.0"], receiver_input="k", source="mean")
    result.baseline, result.full, result.path     # nothing changed / sender changed everywhere / only on the route
    result.fraction                               # share of the sender's effect that goes through that route

For K-composition (PAPER.md section 2) the route is "previous-token head -> induction head's
keys": the receiver's key input becomes the residual stream it normally reads plus the
change of the sender's output, (z_new - z) W_O; every other reader of the residual stream
(the receiver's queries and values, other heads, MLPs, the unembedding) still sees the
sender's real output. This patches the direct route only; routes through heads between
sender and receiver are left as they are.

The sender's new output comes from ``source``: an ablation ("zero", "mean", "resample" over
a reference batch, as in ``ablate``) or its activation on the pair's corrupted prompts
("corrupted"). The run uses TransformerLens's per-head inputs (``use_split_qkv_input``,
and ``ungroup_grouped_query_attention`` so that on grouped-query models only the receiver's
own keys change, not those of the heads sharing its key/value head); both flags are set
for the call and restored after it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, Sequence, get_args

import torch

from birthlens.errors import BirthlensError
from birthlens.probes.ablation import METHODS, ablation_values, reference_tokens
from birthlens.probes.components import Component, parse_components
from birthlens.probes.interventions import Edit, capture, component_activation, compute_dtype, describe_prompts, run_edits, trace
from birthlens.probes.metrics import HIGHER_IS_BETTER, json_value, make_scorer, metric_note
from birthlens.probes.pairs import PromptPair

ReceiverInput = Literal["q", "k", "v"]
RECEIVER_INPUTS: tuple[str, ...] = get_args(ReceiverInput)
Source = Literal["zero", "mean", "resample", "corrupted"]
SOURCES: tuple[str, ...] = (*METHODS, "corrupted")

NOT_A_HEAD_ERR = "path patching connects heads; {component} is not a head"
ORDER_ERR = "sender {sender} must sit in an earlier layer than receiver {receiver}"
UNKNOWN_INPUT_ERR = "unknown receiver input {value!r}; choose one of " + ", ".join(RECEIVER_INPUTS)
UNKNOWN_SOURCE_ERR = "unknown source {value!r}; choose one of " + ", ".join(SOURCES)
EMPTY_ERR = "name at least one sender and one receiver head"


@contextmanager
def split_qkv_inputs(model):
    """Give each head its own query/key/value input hook for the duration of the block."""
    configs = {id(module.cfg): module.cfg for module in model.modules() if hasattr(module, "cfg")}
    configs[id(model.cfg)] = model.cfg
    flags = ("use_split_qkv_input", "ungroup_grouped_query_attention")
    saved = {key: tuple(getattr(cfg, flag) for flag in flags) for key, cfg in configs.items()}
    try:
        for cfg in configs.values():
            cfg.use_split_qkv_input = True
            cfg.ungroup_grouped_query_attention = True
        yield model
    finally:
        for key, cfg in configs.items():
            for flag, value in zip(flags, saved[key]):
                setattr(cfg, flag, value)


@dataclass
class PathResult:
    """The metric with nothing changed, with the senders changed on every route, and on the route only."""

    senders: list[str]
    receivers: list[str]
    receiver_input: str
    source: str
    metric: str
    baseline: float
    full: float
    path: float
    note: str | None = None
    data: dict = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """(baseline - path) / (baseline - full): 1 when the route carries all of the senders' effect."""
        total = self.baseline - self.full
        return (self.baseline - self.path) / total if total != 0 else float("nan")

    def to_dict(self) -> dict:
        return {
            "senders": self.senders,
            "receivers": self.receivers,
            "receiver_input": self.receiver_input,
            "source": self.source,
            "metric": self.metric,
            "higher_is_better": HIGHER_IS_BETTER[self.metric],
            "baseline": json_value(self.baseline),
            "full": json_value(self.full),
            "path": json_value(self.path),
            "fraction": json_value(self.fraction),
            "metric_applies": self.note is None,
            "note": self.note,
            "data": self.data,
        }


def _heads(model, items) -> list[Component]:
    components = parse_components(model, items if isinstance(items, str) else list(items))
    for component in components:
        if component.site != "head":
            raise BirthlensError(NOT_A_HEAD_ERR.format(component=component))
    return components


def _route_hooks(model, senders, receivers, receiver_input, values):
    """Hooks that record the senders' real z and add their change to the receivers' inputs."""
    seen: dict[Component, torch.Tensor] = {}

    def record(z, hook):
        for sender in senders:
            if hook.layer() == sender.layer:
                seen[sender] = z[:, :, sender.head].clone()

    def reroute(inputs, hook):
        change = sum(
            (values[s].to(seen[s].dtype).expand_as(seen[s]) - seen[s]) @ model.blocks[s.layer].attn.W_O[s.head]
            for s in senders
        )
        inputs = inputs.clone()  # the per-head inputs are broadcast views of one residual stream
        for receiver in receivers:
            if hook.layer() == receiver.layer:
                inputs[:, :, receiver.head] += change.to(inputs.dtype)
        return inputs

    hooks = [(f"blocks.{layer}.attn.hook_z", record) for layer in sorted({s.layer for s in senders})]
    hooks += [(f"blocks.{layer}.hook_{receiver_input}_input", reroute) for layer in sorted({r.layer for r in receivers})]
    return hooks


@torch.inference_mode()
def path_patch(
    model,
    senders: Sequence | str,
    receivers: Sequence | str,
    *,
    receiver_input: str = "k",
    source: str = "mean",
    metric: str = "auto",
    pair: PromptPair | None = None,
    data: str | None = None,
    batch_size: int | None = None,
    length: int | None = None,
    seed: int = 0,
    task=None,
    reference: PromptPair | torch.Tensor | None = None,
    mean_over: str = "position",
    dtype: str | None = None,
) -> PathResult:
    """Change ``senders`` only on their route into ``receivers``' ``receiver_input`` (q, k or v).

        r = path_patch(toy, "0.0", "1.0", receiver_input="k", source="mean")
        print(r.baseline, r.full, r.path, r.fraction)

        r = path_patch(smollm2, "3.1", "17.4", source="corrupted", pair=repeated_pair(smollm2))
    """
    if receiver_input not in RECEIVER_INPUTS:
        raise BirthlensError(UNKNOWN_INPUT_ERR.format(value=receiver_input))
    if source not in SOURCES:
        raise BirthlensError(UNKNOWN_SOURCE_ERR.format(value=source))
    senders, receivers = _heads(model, senders), _heads(model, receivers)
    if not senders or not receivers:
        raise BirthlensError(EMPTY_ERR)
    for sender in senders:
        for receiver in receivers:
            if sender.layer >= receiver.layer:
                raise BirthlensError(ORDER_ERR.format(sender=sender, receiver=receiver))
    scorer = make_scorer(model, metric, pair, data=data, batch_size=batch_size, length=length, seed=seed, task=task)
    tokens = scorer.pair.clean
    with split_qkv_inputs(model), compute_dtype(model, dtype):
        if source == "corrupted":
            acts = capture(model, scorer.pair.corrupted, {s.hook_name for s in senders})
            values = {s: component_activation(acts, s) for s in senders}
        else:
            ref = None if source == "zero" else reference_tokens(model, scorer.pair, reference, seed)
            values = ablation_values(model, senders, source, ref, tokens.shape[0], tokens.shape[1], mean_over)
        base = trace(model, tokens)
        baseline = float(scorer(base.final)[0])
        full = float(run_edits(model, base, [[Edit(s, values[s]) for s in senders]], scorer)[0])
        with model.hooks(fwd_hooks=_route_hooks(model, senders, receivers, receiver_input, values)):
            path = float(scorer(model(tokens, stop_at_layer=model.cfg.n_layers))[0])
    extra = {"mean_over": mean_over if source == "mean" else None} if source in ("mean", "resample") else {}
    described = describe_prompts(scorer, dtype, **extra)
    return PathResult(
        senders=[str(s) for s in senders],
        receivers=[str(r) for r in receivers],
        receiver_input=receiver_input,
        source=source,
        metric=scorer.metric,
        baseline=baseline,
        full=full,
        path=path,
        note=metric_note(model, scorer.metric),
        data=described,
    )
