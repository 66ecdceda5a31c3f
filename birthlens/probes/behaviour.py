"""Behaviour: induction loss on [BOS] A A, and the synthetic task's metrics and attention probes.

    loss = induction_loss(model, length=50, batch_size=8)
    loss.first_half, loss.second_half, loss.per_position     # second << first: induction

    metrics = task_metrics(toy, BigramTask(TaskConfig(k=5)).sample(64, seed=0))
    metrics.icl_accuracy, metrics.bigram_loss, metrics.prev_token_probe, metrics.induction_probe

The metric functions on logits (``per_token_loss``, ``copy_losses``, ``second_copy_loss``,
``icl_accuracy``, ``icl_loss``, ``bigram_loss``) are public so ablation and patching can
score a hooked run with the same definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from birthlens.datasets.bigram_task import Batch, BigramTask, TaskConfig
from birthlens.errors import BirthlensError
from birthlens.probes.heads import Head, check_head, tensor_to_json
from birthlens.probes.prompts import check_tokens, model_device, repeated_prompts

NOT_REPEATED_ERR = "tokens of shape {shape} are not [BOS] A A with A of length {length}"


# ---- induction loss on repeated sequences -------------------------------------


def per_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(batch, pos - 1) cross-entropy of predicting tokens[:, i + 1] from logits[:, i]."""
    logprobs = F.log_softmax(logits[:, :-1].float(), dim=-1)
    return -logprobs.gather(-1, tokens[:, 1:, None].to(logprobs.device)).squeeze(-1)


def _copy_offset(tokens: torch.Tensor, length: int) -> int:
    offset = tokens.shape[1] - 2 * length
    if length < 2 or offset not in (0, 1):
        raise BirthlensError(NOT_REPEATED_ERR.format(shape=tuple(tokens.shape), length=length))
    return offset


def copy_losses(logits: torch.Tensor, tokens: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence mean loss on the first and on the second copy of A in [BOS] A A.

    Both average the same L - 1 predictions, A[1:] from inside each copy; the first
    token of each copy is left out because nothing earlier can predict it.
    """
    offset = _copy_offset(tokens, length)
    losses = per_token_loss(logits, tokens)
    # losses[:, i] predicts token i + 1; A[1:] of copy c sits at offset + c * L + 1 ...
    first = losses[:, offset : offset + length - 1]
    second = losses[:, offset + length : offset + 2 * length - 1]
    return first.mean(dim=1), second.mean(dim=1)


def second_copy_loss(logits: torch.Tensor, tokens: torch.Tensor, length: int) -> torch.Tensor:
    """(batch,) mean loss on the second copy: low when the model copies from the first."""
    return copy_losses(logits, tokens, length)[1]


@dataclass
class InductionLoss:
    """Loss on the first vs the second copy of A, and the mean loss at every position."""

    first_half: float
    second_half: float
    per_position: torch.Tensor  # (pos - 1,): loss of predicting token i + 1
    length: int
    n_sequences: int
    bos: bool

    @property
    def gain(self) -> float:
        """How much the repeat helps: first-half loss minus second-half loss (nats)."""
        return self.first_half - self.second_half

    def to_dict(self) -> dict:
        return {
            "first_half": self.first_half,
            "second_half": self.second_half,
            "gain": self.gain,
            "per_position": tensor_to_json(self.per_position),
            "length": self.length,
            "n_sequences": self.n_sequences,
            "bos": self.bos,
        }


def induction_loss_from_logits(logits: torch.Tensor, tokens: torch.Tensor, length: int) -> InductionLoss:
    first, second = copy_losses(logits, tokens, length)
    return InductionLoss(
        first_half=float(first.mean()),
        second_half=float(second.mean()),
        per_position=per_token_loss(logits, tokens).mean(dim=0).cpu(),
        length=length,
        n_sequences=tokens.shape[0],
        bos=_copy_offset(tokens, length) == 1,
    )


@torch.no_grad()
def induction_loss(
    model,
    tokens: torch.Tensor | None = None,
    *,
    length: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    bos: int | None | str = "auto",
) -> InductionLoss:
    """Induction loss of a model on [BOS] A A: drawn (A of ``length`` tokens, by default
    50 or what fits the context), or given as ``tokens`` (then ``length`` defaults to
    half their length).

        loss = induction_loss(model, length=50, batch_size=8, seed=0)
        print(loss.first_half, loss.second_half)
    """
    if tokens is None:
        tokens = repeated_prompts(model, length=length, batch_size=batch_size, seed=seed, bos=bos)
        length = tokens.shape[1] // 2
    else:
        tokens = check_tokens(model, tokens)
        length = tokens.shape[1] // 2 if length is None else length
        offset = _copy_offset(tokens, length)
        if not torch.equal(tokens[:, offset : offset + length], tokens[:, offset + length :]):
            raise BirthlensError(NOT_REPEATED_ERR.format(shape=tuple(tokens.shape), length=length))
    logits = model(tokens, return_type="logits")
    return induction_loss_from_logits(logits, tokens, length)


# ---- the synthetic task ------------------------------------------------------


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    mask = mask.to(values.device)
    return float(values[mask].float().mean()) if mask.any() else math.nan


def icl_accuracy(logits: torch.Tensor, batch: Batch, per_sequence: bool = False) -> float | torch.Tensor:
    """Top-1 accuracy on in-context targets (outputs of second-or-later trigger occurrences).

    ``per_sequence`` gives a (batch,) tensor, NaN for sequences without such a target.
    """
    correct = (logits.argmax(dim=-1) == batch.targets.to(logits.device)).float()
    mask = batch.icl_mask.to(logits.device)
    if per_sequence:
        counts = mask.sum(dim=1)
        return torch.where(counts > 0, (correct * mask).sum(dim=1) / counts.clamp(min=1), torch.nan)
    return _masked_mean(correct, mask)


def _target_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(logits.float().transpose(1, 2), batch.targets.to(logits.device), reduction="none")


def icl_loss(logits: torch.Tensor, batch: Batch) -> float:
    """Cross-entropy on in-context targets (the paper's training loss)."""
    return _masked_mean(_target_loss(logits, batch), batch.icl_mask)


def bigram_loss(logits: torch.Tensor, batch: Batch) -> float:
    """Cross-entropy on targets drawn from the bigram statistics (non-trigger inputs)."""
    return _masked_mean(_target_loss(logits, batch), batch.bigram_mask)


def prev_token_probe(pattern: torch.Tensor, batch: Batch) -> float:
    """Paper's first attention probe: at the position right after a trigger, does the
    head's attention peak on the trigger? ``pattern`` is one head's (batch, query, key)."""
    occurrence = batch.occurrence[:, :-1].to(pattern.device)  # aligned with the inputs
    b, t = torch.nonzero(occurrence[:, :-1] >= 1, as_tuple=True)
    if len(b) == 0:
        return math.nan
    return float((pattern[b, t + 1].argmax(dim=-1) == t).float().mean())


def induction_probe(pattern: torch.Tensor, batch: Batch) -> float:
    """Paper's second attention probe: at a second-or-later trigger occurrence, does the
    head's attention peak on a position right after an earlier occurrence of that trigger?"""
    inputs = batch.inputs.to(pattern.device)
    b, t = torch.nonzero(batch.icl_mask.to(pattern.device), as_tuple=True)
    if len(b) == 0:
        return math.nan
    peak = pattern[b, t].argmax(dim=-1)
    hit = (peak >= 1) & (inputs[b, (peak - 1).clamp(min=0)] == inputs[b, t])
    return float(hit.float().mean())


@dataclass
class TaskMetrics:
    """Metrics of a model on one batch of the bigram-trigger task."""

    icl_accuracy: float
    icl_loss: float
    bigram_loss: float
    prev_token_probe: float
    induction_probe: float
    prev_head: Head
    induction_head: Head
    n_sequences: int
    n_icl_targets: int
    task: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        nan_to_none = lambda x: None if math.isnan(x) else x  # noqa: E731
        return {
            "icl_accuracy": nan_to_none(self.icl_accuracy),
            "icl_loss": nan_to_none(self.icl_loss),
            "bigram_loss": nan_to_none(self.bigram_loss),
            "prev_token_probe": nan_to_none(self.prev_token_probe),
            "induction_probe": nan_to_none(self.induction_probe),
            "prev_head": list(self.prev_head),
            "induction_head": list(self.induction_head),
            "n_sequences": self.n_sequences,
            "n_icl_targets": self.n_icl_targets,
            "task": self.task,
        }


def fitted_task(model, task: BigramTask | TaskConfig | None = None) -> BigramTask:
    """The given task, or the default one shortened to the model's context."""
    if task is None:
        task = TaskConfig(seq_len=min(TaskConfig().seq_len, model.cfg.n_ctx))
    return BigramTask(task) if isinstance(task, TaskConfig) else task


def _check_batch(model, batch: Batch) -> Batch:
    check_tokens(model, batch.inputs, min_len=1)
    if int(batch.tokens.max()) >= model.cfg.d_vocab_out:
        raise BirthlensError(f"batch targets exceed the model's output vocabulary of {model.cfg.d_vocab_out}")
    return batch.to(model_device(model))


@torch.no_grad()
def task_metrics(
    model,
    batch: Batch | None = None,
    *,
    task: BigramTask | TaskConfig | None = None,
    batch_size: int = 64,
    seed: int = 0,
    prev_head=(0, 0),
    induction_head=(1, 0),
) -> TaskMetrics:
    """In-context accuracy and loss, bigram loss and the paper's two attention probes.

        task_metrics(toy)                                     # default task, 64 sequences
        task_metrics(toy, BigramTask(TaskConfig(k=3)).sample(128, seed=1))

    The attention probes read ``prev_head`` (the paper's layer 1) and ``induction_head``
    (its layer 2) from the same forward pass.
    """
    prev_head, induction_head = check_head(model, prev_head), check_head(model, induction_head)
    task_info = {}
    if batch is None:
        task = fitted_task(model, task)
        batch = task.sample(batch_size, seed=seed)
        task_info = {**task.config.to_dict(), "seed": seed}
    batch = _check_batch(model, batch)
    patterns: dict[Head, torch.Tensor] = {}

    def keep(head):
        def hook(pattern, hook):
            patterns[head] = pattern[:, head[1]]

        return (f"blocks.{head[0]}.attn.hook_pattern", hook)

    logits = model.run_with_hooks(batch.inputs, return_type="logits", fwd_hooks=[keep(prev_head), keep(induction_head)])
    return TaskMetrics(
        icl_accuracy=icl_accuracy(logits, batch),
        icl_loss=icl_loss(logits, batch),
        bigram_loss=bigram_loss(logits, batch),
        prev_token_probe=prev_token_probe(patterns[prev_head], batch),
        induction_probe=induction_probe(patterns[induction_head], batch),
        prev_head=prev_head,
        induction_head=induction_head,
        n_sequences=batch.tokens.shape[0],
        n_icl_targets=int(batch.icl_mask.sum()),
        task=task_info,
    )
