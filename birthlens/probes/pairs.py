"""Clean and corrupted prompts for ablation and patching, with the positions a metric reads.

    pair = repeated_pair(model, length=50, batch_size=8, seed=0)   # [BOS] A A  vs  [BOS] A A'
    pair = task_pair(toy, batch_size=64, seed=0)                   # bigram-trigger task, outputs re-drawn

In both, the clean prompt can be completed from context and the corrupted one differs only
in what context says: the second copy is a fresh random sequence A', or every trigger's
output o_k is replaced by another token. The metric is read at the positions where the
clean prediction depends on that context (``answer_mask``): inside the second copy, or at
second-or-later trigger occurrences. Labels are the next tokens of each prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import torch

from birthlens.datasets.bigram_task import Batch, BigramTask, TaskConfig
from birthlens.datasets.corpus import default_stats
from birthlens.errors import BirthlensError
from birthlens.probes.behaviour import fitted_task
from birthlens.probes.prompts import check_tokens, default_bos, fitted_length, model_device, repeated_prompts

DataKind = Literal["repeated", "task"]
DATA_KINDS: tuple[str, ...] = get_args(DataKind)

UNKNOWN_DATA_ERR = "unknown data {kind!r}; choose one of " + ", ".join(DATA_KINDS)
SHORT_REPEAT_ERR = "length={length}: a repeated sequence needs at least 2 tokens to score a second copy"
TASK_VOCAB_ERR = "the synthetic task uses {size} token ids but the model's vocabulary has only {d_vocab}"
NO_ANSWERS_ERR = "the prompts have no position to score (no second-or-later trigger occurrence); draw more or longer sequences"

# Corrupted prompts draw their randomness from seeds far from the clean ones.
CORRUPT_SEED_OFFSET = 7_919_000_003


@dataclass
class PromptPair:
    """Clean and corrupted inputs of the same shape, the next-token labels of each, and
    where the metric is read."""

    clean: torch.Tensor  # (batch, pos) token ids, the model's inputs
    corrupted: torch.Tensor  # (batch, pos)
    clean_labels: torch.Tensor  # (batch, pos): the clean next token at each position (0 where none)
    corrupted_labels: torch.Tensor  # (batch, pos)
    answer_mask: torch.Tensor  # (batch, pos) bool
    kind: str
    settings: dict = field(default_factory=dict)
    task: BigramTask | None = field(default=None, repr=False)  # the sampler, for drawing reference data

    @property
    def batch_size(self) -> int:
        return self.clean.shape[0]

    @property
    def seq_len(self) -> int:
        return self.clean.shape[1]

    def to(self, device) -> "PromptPair":
        moved = {name: getattr(self, name).to(device) for name in ("clean", "corrupted", "clean_labels", "corrupted_labels", "answer_mask")}
        return replace(self, **moved)

    def describe(self) -> dict:
        return {"data": self.kind, "n_sequences": self.batch_size, "seq_len": self.seq_len, "n_answers": int(self.answer_mask.sum()), **self.settings}


def _next_tokens(tokens: torch.Tensor) -> torch.Tensor:
    labels = torch.zeros_like(tokens)
    labels[:, :-1] = tokens[:, 1:]
    return labels


def repeated_pair(
    model,
    length: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    bos: int | None | str = "auto",
) -> PromptPair:
    """[BOS] A A (clean) and [BOS] A A' (corrupted: a fresh second copy), A of ``length`` tokens.

        pair = repeated_pair(model, length=50, batch_size=8)
        pair.clean.shape          # (8, 101) with SmolLM2's BOS, (8, 100) for the toy

    Answers are the predictions of A[1:] inside the second copy, the same L - 1 positions
    as ``second_copy_loss``.
    """
    bos_id = default_bos(model) if bos == "auto" else bos
    length = fitted_length(model, length, bos_id)
    if length < 2:
        raise BirthlensError(SHORT_REPEAT_ERR.format(length=length))
    clean = repeated_prompts(model, length=length, batch_size=batch_size, seed=seed, bos=bos_id)
    fresh = repeated_prompts(model, length=length, batch_size=batch_size, seed=seed + CORRUPT_SEED_OFFSET, bos=bos_id)
    offset = int(bos_id is not None)
    corrupted = clean.clone()
    corrupted[:, offset + length :] = fresh[:, offset : offset + length]
    answers = torch.zeros_like(clean, dtype=torch.bool)
    answers[:, offset + length : offset + 2 * length - 1] = True
    return PromptPair(
        clean=clean,
        corrupted=corrupted,
        clean_labels=_next_tokens(clean),
        corrupted_labels=_next_tokens(corrupted),
        answer_mask=answers,
        kind="repeated",
        settings={"length": length, "bos": bos_id, "seed": seed},
    )


def redraw_outputs(batch: Batch, seed: int = 0, vocab_size: int | None = None) -> torch.Tensor:
    """The batch's tokens with every trigger's output o_k replaced by another token o'_k.

    o'_k is uniform over tokens that are neither o_k nor one of the sequence's triggers (so
    the corruption creates no new trigger occurrence); each occurrence of q_k is then followed
    by o'_k. Tokens drawn from the bigram statistics after an output are left as they were.
    """
    tokens, triggers, outputs = batch.tokens, batch.triggers, batch.outputs
    size = vocab_size or int(tokens.max()) + 1
    gen = torch.Generator().manual_seed(int(seed))
    scores = torch.rand(*outputs.shape, size, generator=gen)
    scores.scatter_(2, outputs.unsqueeze(2).cpu(), -1.0)
    scores.scatter_(2, triggers.unsqueeze(1).expand(-1, outputs.shape[1], -1).cpu(), -1.0)
    new_outputs = scores.argmax(dim=2).to(tokens.device)  # (B, K)
    after_trigger = batch.occurrence[:, :-1] >= 1  # tokens[:, t + 1] is the output of trigger tokens[:, t]
    which = (tokens[:, :-1, None] == triggers[:, None, :]).int().argmax(dim=2)  # (B, T) index k
    replaced = new_outputs.gather(1, which)
    corrupted = tokens.clone()
    corrupted[:, 1:] = torch.where(after_trigger, replaced, tokens[:, 1:])
    return corrupted


def speaks_task(model) -> bool:
    """Whether the model reads the synthetic task's 65-character vocabulary (a birthlens toy).

    A pretrained LLM can be fed the task's ids, but they are arbitrary tokens to it.
    """
    return getattr(model, "tokenizer", None) is None and model.cfg.d_vocab == default_stats().size


def task_pair(
    model,
    task: BigramTask | TaskConfig | None = None,
    batch_size: int = 64,
    seed: int = 0,
) -> PromptPair:
    """Bigram-trigger sequences (clean) and the same with every output re-drawn (corrupted).

        pair = task_pair(toy, TaskConfig(k=5, seq_len=64), batch_size=64, seed=0)

    Answers are the targets at second-or-later trigger occurrences (in-context accuracy's).
    """
    task = fitted_task(model, task)
    if task.vocab_size > model.cfg.d_vocab:
        raise BirthlensError(TASK_VOCAB_ERR.format(size=task.vocab_size, d_vocab=model.cfg.d_vocab))
    batch = task.sample(batch_size, seed=seed)
    corrupted = redraw_outputs(batch, seed=seed + CORRUPT_SEED_OFFSET, vocab_size=task.vocab_size)
    if not batch.icl_mask.any():
        raise BirthlensError(NO_ANSWERS_ERR)
    device = model_device(model)
    return PromptPair(
        clean=check_tokens(model, batch.inputs, min_len=1),
        corrupted=check_tokens(model, corrupted[:, :-1], min_len=1),
        clean_labels=batch.targets.to(device),
        corrupted_labels=corrupted[:, 1:].to(device),
        answer_mask=batch.icl_mask.to(device),
        kind="task",
        settings={"task": task.config.to_dict(), "seed": seed},
        task=task,
    )


def draw_pair(model, kind: str = "repeated", *, batch_size: int | None = None, seed: int = 0, length: int | None = None, task=None) -> PromptPair:
    """``repeated_pair`` or ``task_pair`` by name; batch size defaults to 8 and 64."""
    if kind == "repeated":
        return repeated_pair(model, length=length, batch_size=batch_size or 8, seed=seed)
    if kind == "task":
        return task_pair(model, task=task, batch_size=batch_size or 64, seed=seed)
    raise BirthlensError(UNKNOWN_DATA_ERR.format(kind=kind))


def redraw_pair(model, pair: PromptPair, seed: int) -> PromptPair:
    """A pair drawn like ``pair`` but from another seed: reference data for mean and resample ablation."""
    if pair.kind == "repeated":
        return repeated_pair(model, length=pair.settings["length"], batch_size=pair.batch_size, seed=seed, bos=pair.settings["bos"])
    if pair.kind == "task":
        task = pair.task if pair.task is not None else TaskConfig(**pair.settings["task"])
        return task_pair(model, task, batch_size=pair.batch_size, seed=seed)
    raise BirthlensError(UNKNOWN_DATA_ERR.format(kind=pair.kind))
