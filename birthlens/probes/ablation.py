"""Ablation: knock out heads or layer outputs and measure what the model loses.

    result = ablate(model, ["1.0"], method="mean")                 # metric "auto": icl_accuracy on the toy
    result.baseline, result.ablated, result.delta
    result = ablate(smollm2, [(17, 4), (18, 1)], method="mean", metric="second_copy_loss")

    sweep = ablation_sweep(smollm2, method="mean")                 # every head, one at a time
    sweep.ablated.shape                                            # (30, 9)
    sweep.top(3)                                                   # [("17.4", ablated, delta), ...] most harmful first

Methods replace a component's output on the evaluated prompts with
- ``zero``: zeros;
- ``mean``: its mean over a reference batch, per position (``mean_over="position"``) or
  over every position (``"all"``);
- ``resample``: its activation on another sequence (row i of the reference batch).
The reference batch is drawn like the evaluated one from another seed, unless given.
A head is its slice of ``hook_z``; layer outputs are ``attn.L`` / ``mlp.L``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence, get_args

import torch
from tqdm.auto import tqdm

from birthlens.errors import BirthlensError
from birthlens.probes.components import Component, parse_components
from birthlens.probes.effects import entry_name, fill_table, ranked, table_components
from birthlens.probes.heads import tensor_to_json
from birthlens.probes.interventions import Edit, capture, component_activation, compute_dtype, describe_prompts, run_edits, trace
from birthlens.probes.metrics import HIGHER_IS_BETTER, Scorer, harm, json_value, make_scorer, metric_note
from birthlens.probes.pairs import PromptPair, redraw_pair
from birthlens.probes.prompts import check_tokens

Method = Literal["zero", "mean", "resample"]
METHODS: tuple[str, ...] = get_args(Method)
MeanOver = Literal["position", "all"]
MEAN_OVER: tuple[str, ...] = get_args(MeanOver)

UNKNOWN_METHOD_ERR = "unknown ablation method {method!r}; choose one of " + ", ".join(METHODS)
UNKNOWN_MEAN_OVER_ERR = "unknown mean_over {value!r}; choose one of " + ", ".join(MEAN_OVER)
REFERENCE_SHAPE_ERR = (
    "the reference sequences have {ref} positions but the evaluated ones {n}; per-position means "
    "and resampling need the same length (or use mean_over='all')"
)

# Reference batches are drawn from seeds far from the evaluated ones.
REFERENCE_SEED_OFFSET = 1_000_003


def check_method(method: str) -> str:
    if method not in METHODS:
        raise BirthlensError(UNKNOWN_METHOD_ERR.format(method=method))
    return method


def reference_tokens(model, pair: PromptPair, reference, seed: int) -> torch.Tensor:
    """The reference batch's token ids: given, or drawn like ``pair`` from another seed."""
    if reference is None:
        return redraw_pair(model, pair, seed + REFERENCE_SEED_OFFSET).clean
    if isinstance(reference, PromptPair):
        return reference.clean
    return check_tokens(model, reference)


def ablation_values(
    model,
    components: Sequence[Component],
    method: str,
    reference: torch.Tensor | None,
    batch_size: int,
    seq_len: int,
    mean_over: str = "position",
) -> dict[Component, torch.Tensor]:
    """The tensor that replaces each component's activation (see ``Edit.value``).

    ``reference`` is a (rows, pos) batch of token ids (unused for ``zero``).
    """
    check_method(method)
    if mean_over not in MEAN_OVER:
        raise BirthlensError(UNKNOWN_MEAN_OVER_ERR.format(value=mean_over))
    if method == "zero":
        return {c: torch.zeros(()) for c in components}
    per_position = method == "resample" or mean_over == "position"
    if per_position and reference.shape[1] != seq_len:
        raise BirthlensError(REFERENCE_SHAPE_ERR.format(ref=reference.shape[1], n=seq_len))
    acts = capture(model, reference, {c.hook_name for c in components})
    values = {}
    for component in components:
        act = component_activation(acts, component)
        if method == "resample":
            values[component] = act[torch.arange(batch_size, device=act.device) % act.shape[0]]
        else:
            values[component] = act.mean(dim=(0,) if per_position else (0, 1), keepdim=True)
    return values


@dataclass
class AblationResult:
    """The metric with and without a set of components, on the same prompts."""

    components: list[str]
    method: str
    metric: str
    baseline: float
    ablated: float
    mean_over: str | None = None
    note: str | None = None  # set when the metric does not apply to the model
    data: dict = field(default_factory=dict)

    @property
    def delta(self) -> float:
        return self.ablated - self.baseline

    def to_dict(self) -> dict:
        return {
            "components": self.components,
            "method": self.method,
            "mean_over": self.mean_over,
            "metric": self.metric,
            "higher_is_better": HIGHER_IS_BETTER[self.metric],
            "baseline": json_value(self.baseline),
            "ablated": json_value(self.ablated),
            "delta": json_value(self.delta),
            "metric_applies": self.note is None,
            "note": self.note,
            "data": self.data,
        }


@dataclass
class AblationSweep:
    """The metric with each component of one site ablated alone: (n_layers, n_heads) for heads."""

    site: str
    method: str
    metric: str
    baseline: float
    ablated: torch.Tensor  # (n_layers, n_heads) or (n_layers,), float64 on the CPU; NaN: not swept
    mean_over: str | None = None
    note: str | None = None
    data: dict = field(default_factory=dict)

    @property
    def delta(self) -> torch.Tensor:
        return self.ablated - self.baseline

    @property
    def harm(self) -> torch.Tensor:
        """The change of the metric signed so that positive means the model got worse."""
        return harm(self.metric, self.delta)

    def top(self, n: int = 5) -> list[tuple[str, float, float]]:
        """The ``n`` most harmful ablations as (component, ablated, delta), worst first."""
        return [(entry_name(self.site, i), float(self.ablated[i]), float(self.delta[i])) for i in ranked(self.harm, n)]

    def to_dict(self, top: int = 10) -> dict:
        return {
            "site": self.site,
            "method": self.method,
            "mean_over": self.mean_over,
            "metric": self.metric,
            "higher_is_better": HIGHER_IS_BETTER[self.metric],
            "baseline": json_value(self.baseline),
            "ablated": tensor_to_json(self.ablated),
            "delta": tensor_to_json(self.delta),
            "top": [{"component": name, "ablated": a, "delta": d} for name, a, d in self.top(top)],
            "metric_applies": self.note is None,
            "note": self.note,
            "data": self.data,
        }


def _describe(scorer: Scorer, method: str, reference, dtype: str | None) -> dict:
    if method == "zero":
        return describe_prompts(scorer, dtype)
    return describe_prompts(scorer, dtype, reference="given" if reference is not None else f"drawn alike, seed + {REFERENCE_SEED_OFFSET}")


def _prepare(model, components, method, mean_over, reference, prompts: dict):
    """The scorer, the plain run, its metric, and each component's replacement."""
    scorer = make_scorer(model, prompts.pop("metric"), prompts.pop("pair"), **prompts)
    tokens = scorer.pair.clean
    ref = None if method == "zero" else reference_tokens(model, scorer.pair, reference, prompts["seed"])
    values = ablation_values(model, components, method, ref, tokens.shape[0], tokens.shape[1], mean_over)
    base = trace(model, tokens)
    return scorer, base, float(scorer(base.final)[0]), values


@torch.inference_mode()
def ablate(
    model,
    components: Sequence | str,
    *,
    method: str = "mean",
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
) -> AblationResult:
    """Ablate ``components`` together ("1.0", (1, 0), "attn.2", "mlp.3"; or "1.0,0.0") and score.

        ablate(toy, ["1.0"], method="mean").to_dict()      # {"baseline": 0.96, "ablated": 0.02, ...}
        ablate(model, "17.4,18.1", method="zero", metric="second_copy_loss", length=50, batch_size=8)

    ``pair`` (or ``data`` / ``batch_size`` / ``length`` / ``seed`` / ``task``) gives the
    prompts; the metric reads their clean half. An empty list ablates nothing. ``dtype``
    "bfloat16" runs the passes under autocast (faster on CPU, values move by ~0.01).
    """
    check_method(method)
    components = parse_components(model, components) if isinstance(components, str) else parse_components(model, list(components))
    prompts = dict(metric=metric, pair=pair, data=data, batch_size=batch_size, length=length, seed=seed, task=task)
    with compute_dtype(model, dtype):
        scorer, base, baseline, values = _prepare(model, components, method, mean_over, reference, prompts)
        ablated = float(run_edits(model, base, [[Edit(c, values[c]) for c in components]], scorer)[0])
    return AblationResult(
        components=[str(c) for c in components],
        method=method,
        metric=scorer.metric,
        baseline=baseline,
        ablated=ablated,
        mean_over=mean_over if method == "mean" else None,
        note=metric_note(model, scorer.metric),
        data=_describe(scorer, method, reference, dtype),
    )


@torch.inference_mode()
def ablation_sweep(
    model,
    *,
    site: str = "head",
    method: str = "mean",
    metric: str = "auto",
    pair: PromptPair | None = None,
    data: str | None = None,
    batch_size: int | None = None,
    length: int | None = None,
    seed: int = 0,
    task=None,
    reference: PromptPair | torch.Tensor | None = None,
    mean_over: str = "position",
    layers: Sequence[int] | None = None,
    copies: int | None = None,
    progress: bool = False,
    dtype: str | None = None,
) -> AblationSweep:
    """Ablate every component of ``site`` ("head", "attn_out", "mlp_out") alone; one table.

        sweep = ablation_sweep(smollm2, method="mean", metric="second_copy_loss", length=50, batch_size=8)
        sweep.delta[17, 4], sweep.top(5)

    ``layers`` limits the sweep to some layers (the other entries are NaN). ``copies``
    variants (one ablated component each) share a forward pass as stacked copies of the
    batch; by default as many as fit about 256 MiB of activations. ``dtype="bfloat16"``
    runs the passes under autocast: about 1.8x faster on CPU, values move by ~0.01.
    """
    check_method(method)
    components = table_components(model, site, layers)
    prompts = dict(metric=metric, pair=pair, data=data, batch_size=batch_size, length=length, seed=seed, task=task)
    with compute_dtype(model, dtype):
        scorer, base, baseline, values = _prepare(model, components, method, mean_over, reference, prompts)
        variants = [[Edit(c, values[c])] for c in components]
        with tqdm(total=len(variants), desc="ablate", unit=site, disable=not progress) as bar:
            ablated = run_edits(model, base, variants, scorer, copies=copies, progress=bar.update)
    return AblationSweep(
        site=site,
        method=method,
        metric=scorer.metric,
        baseline=baseline,
        ablated=fill_table(model, site, components, ablated),
        mean_over=mean_over if method == "mean" else None,
        note=metric_note(model, scorer.metric),
        data=_describe(scorer, method, reference, dtype),
    )
