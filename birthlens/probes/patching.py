"""Activation patching between a clean and a corrupted prompt, normalised 0 = corrupted, 1 = clean.

    pair = repeated_pair(model, length=50, batch_size=8)              # [BOS] A A vs [BOS] A A'
    patch(model, ["17.4"], pair=pair).normalised                      # how much one head restores
    sweep = patching_sweep(model, site="head", pair=pair)             # every head: (n_layers, n_heads)
    sweep = patching_sweep(model, site="resid_pre", per_position=True)  # (n_layers, pos)
    sweep.top(5)                                                      # [("17.4", 0.41), ...]

``denoising`` runs the corrupted prompt with a component's activation copied from the
clean run (does it suffice?); ``noising`` runs the clean prompt with the corrupted
activation (is it needed?). Either way the metric is reported as
(patched - corrupted) / (clean - corrupted), so denoising finds components near 1 and
noising finds them near 0. ``top`` ranks by importance: the normalised value for
denoising, one minus it for noising.
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
from birthlens.probes.interventions import Edit, Trace, component_activation, compute_dtype, describe_prompts, run_edits, trace
from birthlens.probes.metrics import HIGHER_IS_BETTER, Scorer, json_value, make_scorer, metric_note
from birthlens.probes.pairs import PromptPair

Direction = Literal["denoising", "noising"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)

UNKNOWN_DIRECTION_ERR = "unknown direction {value!r}; choose one of " + ", ".join(DIRECTIONS)
POSITION_RANGE_ERR = "positions must lie in [0, {n}), got {positions}"


def normalise(patched, clean: float, corrupted: float):
    """(patched - corrupted) / (clean - corrupted); NaN when clean and corrupted agree."""
    gap = clean - corrupted
    if gap == 0:
        return patched * float("nan")
    return (patched - corrupted) / gap


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise BirthlensError(UNKNOWN_DIRECTION_ERR.format(value=direction))
    return direction


def _check_positions(positions, n: int) -> torch.Tensor | None:
    if positions is None:
        return None
    positions = torch.as_tensor(positions, dtype=torch.long).flatten()
    if len(positions) == 0 or int(positions.min()) < -n or int(positions.max()) >= n:
        raise BirthlensError(POSITION_RANGE_ERR.format(n=n, positions=positions.tolist()))
    return positions % n


def _runs(model, scorer: Scorer, direction: str, components: Sequence[Component]) -> tuple[Trace, Trace, float, float]:
    """The run that gets patched, the run activations come from, and the clean / corrupted metrics."""
    pair = scorer.pair
    names = {c.hook_name for c in components}
    clean = trace(model, pair.clean, capture=names if direction == "denoising" else ())
    corrupted = trace(model, pair.corrupted, capture=names if direction == "noising" else ())
    clean_value, corrupted_value = float(scorer(clean.final)[0]), float(scorer(corrupted.final)[0])
    base, source = (corrupted, clean) if direction == "denoising" else (clean, corrupted)
    return base, source, clean_value, corrupted_value


@dataclass
class PatchResult:
    """Clean, corrupted and patched metric for one set of components patched together."""

    components: list[str]
    direction: str
    metric: str
    clean: float
    corrupted: float
    patched: float
    positions: list[int] | None = None
    note: str | None = None
    data: dict = field(default_factory=dict)

    @property
    def normalised(self) -> float:
        return normalise(self.patched, self.clean, self.corrupted)

    def to_dict(self) -> dict:
        return {
            "components": self.components,
            "direction": self.direction,
            "positions": self.positions,
            "metric": self.metric,
            "higher_is_better": HIGHER_IS_BETTER[self.metric],
            "clean": json_value(self.clean),
            "corrupted": json_value(self.corrupted),
            "patched": json_value(self.patched),
            "normalised": json_value(self.normalised),
            "metric_applies": self.note is None,
            "note": self.note,
            "data": self.data,
        }


@dataclass
class PatchingSweep:
    """Each component of one site patched alone: a (n_layers, n_heads) or (n_layers,) table,
    with a trailing position axis when patched per position (NaN where not patched)."""

    site: str
    direction: str
    metric: str
    clean: float
    corrupted: float
    patched: torch.Tensor
    per_position: bool = False
    note: str | None = None
    data: dict = field(default_factory=dict)

    @property
    def normalised(self) -> torch.Tensor:
        return normalise(self.patched, self.clean, self.corrupted)

    @property
    def importance(self) -> torch.Tensor:
        return self.normalised if self.direction == "denoising" else 1 - self.normalised

    def top(self, n: int = 5) -> list[tuple]:
        """The ``n`` most important entries as (component, normalised), or (component, position,
        normalised) per position; most important first."""
        table_dims = 2 if self.site == "head" else 1
        values = self.normalised
        return [
            (entry_name(self.site, index[:table_dims]), *index[table_dims:], float(values[index]))
            for index in ranked(self.importance, n)
        ]

    def to_dict(self, top: int = 10) -> dict:
        return {
            "site": self.site,
            "direction": self.direction,
            "per_position": self.per_position,
            "metric": self.metric,
            "higher_is_better": HIGHER_IS_BETTER[self.metric],
            "clean": json_value(self.clean),
            "corrupted": json_value(self.corrupted),
            "patched": tensor_to_json(self.patched),
            "normalised": tensor_to_json(self.normalised),
            "top": [
                {"component": entry[0], **({"position": entry[1]} if self.per_position else {}), "normalised": json_value(entry[-1])}
                for entry in self.top(top)
            ],
            "metric_applies": self.note is None,
            "note": self.note,
            "data": self.data,
        }


@torch.inference_mode()
def patch(
    model,
    components: Sequence | str,
    *,
    direction: str = "denoising",
    positions=None,
    metric: str = "auto",
    pair: PromptPair | None = None,
    data: str | None = None,
    batch_size: int | None = None,
    length: int | None = None,
    seed: int = 0,
    task=None,
    dtype: str | None = None,
) -> PatchResult:
    """Patch ``components`` together (at ``positions``, default all) from one run into the other.

        patch(model, ["resid.0"]).normalised                   # 1.0: the whole input restored
        patch(model, "17.4,18.1", direction="noising", metric="logit_diff").to_dict()
    """
    _check_direction(direction)
    components = parse_components(model, components if isinstance(components, str) else list(components))
    scorer = make_scorer(model, metric, pair, data=data, batch_size=batch_size, length=length, seed=seed, task=task)
    where = _check_positions(positions, scorer.pair.seq_len)
    with compute_dtype(model, dtype):
        base, source, clean, corrupted = _runs(model, scorer, direction, components)
        edits = [Edit(c, component_activation(source.captured, c), where) for c in components]
        patched = float(run_edits(model, base, [edits], scorer)[0])
    return PatchResult(
        components=[str(c) for c in components],
        direction=direction,
        metric=scorer.metric,
        clean=clean,
        corrupted=corrupted,
        patched=patched,
        positions=None if where is None else where.tolist(),
        note=metric_note(model, scorer.metric),
        data=describe_prompts(scorer, dtype),
    )


@torch.inference_mode()
def patching_sweep(
    model,
    *,
    site: str = "head",
    direction: str = "denoising",
    per_position: bool = False,
    positions=None,
    metric: str = "auto",
    pair: PromptPair | None = None,
    data: str | None = None,
    batch_size: int | None = None,
    length: int | None = None,
    seed: int = 0,
    task=None,
    layers: Sequence[int] | None = None,
    copies: int | None = None,
    progress: bool = False,
    dtype: str | None = None,
) -> PatchingSweep:
    """Patch every component of ``site`` ("head", "attn_out", "mlp_out", "resid_pre") alone.

        sweep = patching_sweep(toy, site="resid_pre", per_position=True, metric="logit_diff", data="task")
        sweep.normalised.shape    # (n_layers, pos)

    With ``per_position`` each component is patched at one position at a time (``positions``,
    default every position); otherwise at all positions together (or at ``positions``).
    ``layers`` limits the sweep to some layers (the other entries are NaN); ``dtype`` as in
    ``ablation_sweep``.
    """
    _check_direction(direction)
    components = table_components(model, site, layers)
    scorer = make_scorer(model, metric, pair, data=data, batch_size=batch_size, length=length, seed=seed, task=task)
    n = scorer.pair.seq_len
    where = _check_positions(positions, n)
    with compute_dtype(model, dtype):
        base, source, clean, corrupted = _runs(model, scorer, direction, components)
        acts = {c: component_activation(source.captured, c) for c in components}
        if per_position:
            swept = where if where is not None else torch.arange(n)
            variants = [[Edit(c, acts[c], swept[i : i + 1])] for c in components for i in range(len(swept))]
        else:
            variants = [[Edit(c, acts[c], where)] for c in components]
        with tqdm(total=len(variants), desc="patch", unit="run", disable=not progress) as bar:
            values = run_edits(model, base, variants, scorer, copies=copies, progress=bar.update)
    if per_position:
        rows = torch.full((len(components), n), float("nan"), dtype=values.dtype)
        rows[:, swept] = values.view(len(components), len(swept))
        values = rows
    patched = fill_table(model, site, components, values)
    return PatchingSweep(
        site=site,
        direction=direction,
        metric=scorer.metric,
        clean=clean,
        corrupted=corrupted,
        patched=patched,
        per_position=per_position,
        note=metric_note(model, scorer.metric),
        data={**describe_prompts(scorer, dtype), **({"positions": where.tolist()} if where is not None else {})},
    )
