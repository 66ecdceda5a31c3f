"""Per-head score tables and head-index checks shared by every probe.

    scores = HeadScores("induction", torch.rand(2, 4))
    scores.top(3)      # [(layer, head, score), ...] strongest first
    scores[1, 0]       # one head's score as a float
    scores.to_dict()   # {"name": "induction", "values": [[...], ...]} (NaN -> null)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

from birthlens.errors import BirthlensError

Head = tuple[int, int]

HEAD_OUT_OF_RANGE_ERR = "head {head} is out of range: the model has {n_layers} layers of {n_heads} heads"
HEAD_FORMAT_ERR = "a head is a (layer, head) pair of integers, got {head!r}"


def check_head(model, head) -> Head:
    """Validate one (layer, head) pair against the model; negative indices count from the end."""
    try:
        layer, index = (int(x) for x in head)
    except (TypeError, ValueError) as exc:
        raise BirthlensError(HEAD_FORMAT_ERR.format(head=head)) from exc
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    if not (-n_layers <= layer < n_layers and -n_heads <= index < n_heads):
        raise BirthlensError(HEAD_OUT_OF_RANGE_ERR.format(head=(layer, index), n_layers=n_layers, n_heads=n_heads))
    return layer % n_layers, index % n_heads


def check_heads(model, heads: Iterable | None) -> list[Head]:
    """All heads of the model when ``heads`` is None, else the validated list."""
    if heads is None:
        return [(layer, h) for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    return [check_head(model, head) for head in heads]


def _json_number(value: float) -> float | None:
    # JSON has no NaN; a head that was not measured is null.
    return None if math.isnan(value) else float(value)


def tensor_to_json(values: torch.Tensor) -> list:
    """A float tensor as nested lists with NaN turned into None."""
    if values.dim() == 0:
        return _json_number(values.item())
    return [tensor_to_json(row) for row in values]


@dataclass
class HeadScores:
    """One number per (layer, head); NaN marks a head that was not measured."""

    name: str
    values: torch.Tensor  # (n_layers, n_heads) float, on the CPU

    def __getitem__(self, head: Sequence[int]) -> float:
        layer, index = head
        return float(self.values[layer, index])

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.values.shape)

    def top(self, n: int = 5, largest: bool = True) -> list[tuple[int, int, float]]:
        """The n strongest heads as (layer, head, score), best first (NaN heads skipped)."""
        flat = self.values.flatten()
        measured = torch.nonzero(~torch.isnan(flat)).flatten()
        order = flat[measured].argsort(descending=largest, stable=True)[: max(n, 0)]
        n_heads = self.values.shape[1]
        return [(int(i) // n_heads, int(i) % n_heads, float(flat[i])) for i in measured[order]]

    def to_dict(self) -> dict:
        return {"name": self.name, "values": tensor_to_json(self.values)}
