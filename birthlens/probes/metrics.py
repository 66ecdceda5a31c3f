"""Metrics for ablation and patching, read at a prompt pair's answer positions.

    scorer = Scorer(model, pair, "second_copy_loss")
    scorer.from_logits(model(pair.clean))            # a float, same value as behaviour.second_copy_loss
    scorer(final_resid, repeats=9)                   # (9,) one value per stacked copy of the batch
    scorer = make_scorer(model, "auto", batch_size=8)  # the metric and data that suit the model

- ``second_copy_loss``: cross-entropy of the clean next token inside the second copy of
  [BOS] A A (``repeated`` data); the same positions and average as ``behaviour.second_copy_loss``.
- ``icl_accuracy`` / ``icl_loss``: top-1 accuracy / cross-entropy on in-context targets of
  the synthetic task (``task`` data); the same as ``behaviour.icl_accuracy`` / ``icl_loss``.
- ``logit_diff``: logit of the clean next token minus logit of the corrupted prompt's next
  token at the same position (either kind of data).

The scorer works from the residual stream after the last block and unembeds only the
answer positions, a block of the vocabulary at a time: on a 49k-token vocabulary the full
logits of a stacked batch would not fit in memory. (So hooks on ``unembed`` do not fire.)
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from transformer_lens.utilities import apply_softcap

from birthlens.errors import BirthlensError
from birthlens.probes.pairs import PromptPair, draw_pair, speaks_task
from birthlens.probes.prompts import model_device

MetricName = Literal["second_copy_loss", "logit_diff", "icl_accuracy", "icl_loss"]
METRICS: tuple[str, ...] = get_args(MetricName)

# The data each metric is defined on; the first one is its default.
METRIC_DATA = {
    "second_copy_loss": ("repeated",),
    "logit_diff": ("repeated", "task"),
    "icl_accuracy": ("task",),
    "icl_loss": ("task",),
}
HIGHER_IS_BETTER = {"second_copy_loss": False, "logit_diff": True, "icl_accuracy": True, "icl_loss": False}

UNKNOWN_METRIC_ERR = "unknown metric {name!r}; choose one of " + ", ".join(METRICS)
METRIC_DATA_ERR = "metric {name} is defined on {allowed} data, not on {kind}"
NOT_TRAINED_NOTE = (
    "not meaningful for this model: it was never trained on the synthetic task, whose token ids "
    "are arbitrary tokens to it; the number only says how much it copies from context"
)

# Logits per block of the vocabulary: 16 MiB of float32, small enough for the C allocator
# to reuse its memory rather than map and fault in fresh pages for every block.
_BLOCK_ELEMENTS = 4 * 2**20


def check_metric(name: str) -> str:
    if name not in METRICS:
        raise BirthlensError(UNKNOWN_METRIC_ERR.format(name=name))
    return name


def auto_metric(model, data: str | None = None) -> str:
    """The metric of ``data`` (second-copy loss on repeated prompts, in-context accuracy on the
    task); without data, in-context accuracy for models that speak the task (the toy)."""
    if data is None:
        data = "task" if speaks_task(model) else "repeated"
    return "icl_accuracy" if data == "task" else "second_copy_loss"


def default_data(metric: str) -> str:
    return METRIC_DATA[check_metric(metric)][0]


def metric_note(model, metric: str) -> str | None:
    """Why a metric's number does not mean what its name says for this model, or None."""
    if metric in ("icl_accuracy", "icl_loss") and not speaks_task(model):
        return NOT_TRAINED_NOTE
    return None


def json_value(value: float) -> float | None:
    """A metric value for JSON, which has no NaN: an undefined value is null."""
    return None if math.isnan(value) else float(value)


def harm(metric: str, delta: torch.Tensor) -> torch.Tensor:
    """How much worse a change of the metric is: positive when the model does worse."""
    return -delta if HIGHER_IS_BETTER[metric] else delta


def _terms(metric: str, logits: torch.Tensor, clean: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    logits = logits.float()
    if metric == "icl_accuracy":
        return (logits.argmax(dim=-1) == clean).double()
    if metric == "logit_diff":
        return (logits.gather(-1, clean[:, None]) - logits.gather(-1, corrupted[:, None])).squeeze(-1).double()
    return F.cross_entropy(logits, clean, reduction="none").double()


class Scorer:
    """One metric on one prompt pair, from final residual streams or from logits."""

    def __init__(self, model, pair: PromptPair, metric: str):
        check_metric(metric)
        if pair.kind not in METRIC_DATA[metric]:
            allowed = " or ".join(METRIC_DATA[metric])
            raise BirthlensError(METRIC_DATA_ERR.format(name=metric, allowed=allowed, kind=pair.kind))
        pair = pair.to(model_device(model))
        self.model, self.pair, self.metric = model, pair, metric
        rows, positions = torch.nonzero(pair.answer_mask, as_tuple=True)
        if len(rows) == 0:
            raise BirthlensError("the prompt pair has no answer positions to score")
        self.rows, self.positions = rows, positions
        self.clean_labels = pair.clean_labels[rows, positions]
        self.corrupted_labels = pair.corrupted_labels[rows, positions]

    @property
    def n_answers(self) -> int:
        return len(self.rows)

    def _label_logits(self, resid: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        model = self.model
        logits = (resid * model.W_U[:, labels].T).sum(dim=1) + model.b_U[labels]
        return apply_softcap(logits, model.cfg.output_logits_soft_cap).float()

    @torch.inference_mode()
    def terms(self, resid: torch.Tensor, clean: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
        """One metric term per (answer, d_model) row of final residual stream.

        Reads the vocabulary a block of columns at a time, into one reused buffer, with a
        running log-sum-exp and argmax: one large matrix product per block, and neither a
        (rows, d_vocab) tensor nor a fresh allocation per block (W_U is used directly, as
        model.unembed copies its transpose on every call).
        """
        model = self.model
        if model.cfg.normalization_type is not None:
            resid = model.ln_final(resid)
        if self.metric == "logit_diff":
            return (self._label_logits(resid, clean) - self._label_logits(resid, corrupted)).double()
        n, d_vocab, cap = len(resid), model.cfg.d_vocab_out, model.cfg.output_logits_soft_cap
        width = min(d_vocab, max(1024, _BLOCK_ELEMENTS // max(n, 1)))
        buffer = torch.empty(n, width, device=resid.device, dtype=resid.dtype)
        best = torch.full((n,), float("-inf"), device=resid.device)
        best_index = torch.zeros(n, dtype=torch.long, device=resid.device)
        total = torch.zeros(n, device=resid.device)  # sum of exp(logit - best)
        target = torch.zeros(n, device=resid.device)
        for first in range(0, d_vocab, width):
            columns = slice(first, min(first + width, d_vocab))
            logits = buffer if columns.stop - first == width else buffer[:, : columns.stop - first].contiguous()
            torch.addmm(model.b_U[columns], resid, model.W_U[:, columns], out=logits)
            if cap is not None and cap > 0:
                logits.div_(cap).tanh_().mul_(cap)  # TransformerLens's output soft cap
            block_best, block_index = logits.max(dim=1)
            higher = block_best > best  # strictly: ties keep the earlier index, as argmax does
            new_best = torch.maximum(best, block_best)
            inside = (clean >= first) & (clean < columns.stop)
            picked = logits.gather(1, (clean - first).clamp(0, logits.shape[1] - 1)[:, None]).squeeze(1)
            target = torch.where(inside, picked.float(), target)
            total = total * torch.exp(best - new_best) + logits.sub_(new_best[:, None].to(logits.dtype)).exp_().sum(dim=1).float()
            best_index = torch.where(higher, block_index + first, best_index)
            best = new_best
        if self.metric == "icl_accuracy":
            return (best_index == clean).double()
        return (best + torch.log(total) - target).double()

    def __call__(self, final_resid: torch.Tensor, repeats: int = 1) -> torch.Tensor:
        """(repeats,) metric of each copy of the batch in a (repeats * batch, pos, d_model) stack."""
        batch = self.pair.batch_size
        offsets = torch.arange(repeats, device=self.rows.device).repeat_interleave(self.n_answers) * batch
        rows = self.rows.repeat(repeats) + offsets
        resid = final_resid[rows, self.positions.repeat(repeats)]
        terms = self.terms(resid, self.clean_labels.repeat(repeats), self.corrupted_labels.repeat(repeats))
        return terms.view(repeats, self.n_answers).mean(dim=1).cpu()

    def from_logits(self, logits: torch.Tensor) -> float:
        """The metric of full (batch, pos, d_vocab) logits, e.g. from ``model(pair.clean)``."""
        selected = logits[self.rows, self.positions]
        return float(_terms(self.metric, selected, self.clean_labels, self.corrupted_labels).mean())


def make_scorer(
    model,
    metric: str = "auto",
    pair: PromptPair | None = None,
    *,
    data: str | None = None,
    batch_size: int | None = None,
    length: int | None = None,
    seed: int = 0,
    task=None,
) -> Scorer:
    """A Scorer for ``metric`` on ``pair``, or on a pair drawn from ``data`` ("repeated" or
    "task"; default: the metric's own). "auto" picks the metric from the data, or from the
    model when neither is given (see ``auto_metric``)."""
    if metric == "auto":
        metric = auto_metric(model, pair.kind if pair is not None else data)
    check_metric(metric)
    if pair is None:
        pair = draw_pair(model, data or default_data(metric), batch_size=batch_size, seed=seed, length=length, task=task)
    return Scorer(model, pair, metric)
