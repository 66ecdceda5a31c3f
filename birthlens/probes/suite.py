"""The whole probe suite in one call, with one JSON-ready result.

    result = probe_all(model)                 # toy or pretrained, same call
    result.top(3)                             # {"prev_token": [(layer, head, score), ...], ...}
    result.memory.ov.value                    # OV recall of the strongest induction head
    json.dump(result.to_dict(), open("probe.json", "w"))
    print(result.summary())

One batched forward pass on [BOS] A A gives all three attention scores AND the
induction loss. Memory recall is read on the strongest induction head I and the
strongest previous-token head P in an earlier layer (on the paper's 2-layer,
1-head toy: I = layer 1, P = layer 0, as in the paper).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from birthlens.datasets.bigram_task import BigramTask, TaskConfig
from birthlens.errors import BirthlensError
from birthlens.probes.attention import SCORE_NAMES, AttentionScores, make_attention_scores, score_attention
from birthlens.probes.behaviour import InductionLoss, TaskMetrics, fitted_task, induction_loss_from_logits, task_metrics
from birthlens.probes.composition import CompositionScores, composition_scores
from birthlens.probes.heads import Head, HeadScores, check_head
from birthlens.probes.memory import (
    DEFAULT_N_TOKENS,
    Recall,
    feed_forward_recall,
    ov_recall,
    positional_recall,
    qk_recall,
)
from birthlens.probes.pairs import speaks_task
from birthlens.probes.prompts import repeated_prompts

ONE_LAYER = "not applicable: prefix matching needs a previous-token head in an earlier layer than the induction head"


@dataclass
class MemoryRecall:
    """The four memory probes on the chosen heads: P (previous-token) and I (induction)."""

    prev_head: Head | None
    induction_head: Head
    ov: Recall
    qk: Recall
    positional: Recall
    feed_forward: Recall

    def items(self):
        return (("ov", self.ov), ("qk", self.qk), ("positional", self.positional), ("feed_forward", self.feed_forward))

    def to_dict(self) -> dict:
        return {
            "prev_head": list(self.prev_head) if self.prev_head else None,
            "induction_head": list(self.induction_head),
            **{name: recall.to_dict() for name, recall in self.items()},
        }


@dataclass
class ProbeSuiteResult:
    """Everything ``probe_all`` measured on one model."""

    model: str
    n_layers: int
    n_heads: int
    attention: AttentionScores
    induction_loss: InductionLoss
    memory: MemoryRecall
    composition: CompositionScores | None = None
    task: TaskMetrics | None = None
    settings: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, HeadScores]:
        return {name: self.attention[name] for name in SCORE_NAMES}

    def top(self, n: int = 5, score: str | None = None):
        """Strongest heads: a list for one ``score``, else a dict over all three scores."""
        if score is not None:
            return self.attention.top(n, score)
        return {name: self.attention.top(n, name) for name in SCORE_NAMES}

    def to_dict(self) -> dict:
        attention = self.attention.to_dict()
        return {
            "model": self.model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "scores": {name: attention.pop(name) for name in SCORE_NAMES},
            "attention": attention,
            "top": {name: [list(t) for t in tops] for name, tops in self.top(5).items()},
            "induction_loss": self.induction_loss.to_dict(),
            "memory_recall": self.memory.to_dict(),
            "composition": self.composition.to_dict() if self.composition is not None else None,
            "task": self.task.to_dict() if self.task is not None else None,
            "settings": self.settings,
            "timings": self.timings,
        }

    def summary(self, n: int = 3) -> str:
        """A few readable lines: strongest heads, induction loss, memory recall."""
        heads = lambda tops: ", ".join(f"L{l}H{h} {s:.3f}" for l, h, s in tops)  # noqa: E731
        loss = self.induction_loss
        lines = [
            f"model: {self.model} ({self.n_layers} layers x {self.n_heads} heads)",
            f"previous-token heads: {heads(self.top(n, 'prev_token'))}",
            f"induction heads:      {heads(self.top(n, 'induction'))}",
            f"duplicate-token heads: {heads(self.top(n, 'duplicate_token'))}",
            f"induction loss ({loss.n_sequences} x [BOS] A A, |A| = {loss.length}): "
            f"first copy {loss.first_half:.3f}, second copy {loss.second_half:.3f} (gain {loss.gain:.3f} nats)",
            "memory recall:",
            *(f"  {recall}" for _, recall in self.memory.items()),
        ]
        if self.composition is not None:
            pairs = self.composition.top(n, "K")
            text = ", ".join(f"L{a}H{b} -> L{c}H{d} {s:.3f}" for a, b, c, d, s in pairs)
            lines.append(f"K-composition: {text or 'none measurable (zero weights)'}")
        if self.task is not None:
            t = self.task
            lines.append(
                f"task: in-context accuracy {t.icl_accuracy:.3f}, in-context loss {t.icl_loss:.3f}, "
                f"bigram loss {t.bigram_loss:.3f}, attention probes {t.prev_token_probe:.3f} / {t.induction_probe:.3f}"
            )
        lines.append(f"time: {sum(self.timings.values()):.1f} s")
        return "\n".join(lines)


def _argmax_head(values: torch.Tensor, layers: range) -> Head | None:
    if len(layers) == 0:
        return None
    block = torch.nan_to_num(values[layers.start : layers.stop], nan=float("-inf"))
    index = int(block.flatten().argmax())
    return layers.start + index // values.shape[1], index % values.shape[1]


def strongest_pair(attention: AttentionScores, prev_head=None, induction_head=None) -> tuple[Head | None, Head]:
    """I: the strongest induction head past layer 0 (if any); P: the strongest
    previous-token head in a layer before I (None for one-layer models)."""
    n_layers = attention.induction.values.shape[0]
    if induction_head is None:
        induction_head = _argmax_head(attention.induction.values, range(1 if n_layers > 1 else 0, n_layers))
    if prev_head is None:
        prev_head = _argmax_head(attention.prev_token.values, range(0, induction_head[0]))
    return prev_head, induction_head


def probe_all(
    model,
    *,
    name: str | None = None,
    length: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    exclude_bos: bool = False,
    n_tokens: int = DEFAULT_N_TOKENS,
    prev_head=None,
    induction_head=None,
    composition: bool = True,
    task: BigramTask | TaskConfig | str | None = "auto",
    task_batch_size: int = 64,
) -> ProbeSuiteResult:
    """Attention scores, induction loss, memory recall, composition and (for the toy) task metrics.

        result = probe_all(birthlens.load("smollm2-135m"))
        result = probe_all(toy, task=TaskConfig(k=5), composition=False)

    ``task="auto"`` runs the synthetic task when the model speaks its 65-character
    vocabulary (the toy) and skips it otherwise; ``None`` skips it. With fixed
    triggers, QK recall is read on the triggers and feed-forward recall leaves them
    out, as in the paper.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 4)
        clock = now

    model.eval()
    tokens = repeated_prompts(model, length=length, batch_size=batch_size, seed=seed)
    length = tokens.shape[1] // 2  # [BOS] A A or A A: either way |A| = n // 2
    with torch.no_grad():
        raw, logits = score_attention(model, tokens, exclude_bos=exclude_bos, return_logits=True)
    attention = make_attention_scores(raw, tokens, exclude_bos, {"prompt": "repeated", "length": length, "seed": seed})
    loss = induction_loss_from_logits(logits, tokens, length)
    del logits
    lap("attention_and_induction_loss")

    if task == "auto":
        # The task's attention probes read a previous-token layer and a later induction layer.
        task = fitted_task(model) if speaks_task(model) and model.cfg.n_layers >= 2 else None
    elif isinstance(task, str):
        raise BirthlensError(f"task={task!r}: pass a TaskConfig, a BigramTask, 'auto' or None")
    elif task is not None:
        task = fitted_task(model, task)

    if prev_head is not None:
        prev_head = check_head(model, prev_head)
    if induction_head is not None:
        induction_head = check_head(model, induction_head)
    p, i = strongest_pair(attention, prev_head, induction_head)
    triggers = task.fixed_trigger_ids if task is not None and task.config.fixed_triggers else None
    memory = MemoryRecall(
        prev_head=p,
        induction_head=i,
        ov=ov_recall(model, i, n_tokens=n_tokens, seed=seed),
        qk=qk_recall(model, p, i, tokens=triggers, n_tokens=n_tokens, seed=seed)
        if p is not None
        else Recall("qk", (i,), None, reason=ONE_LAYER),
        positional=positional_recall(model, p if p is not None else attention.prev_token.top(1)[0][:2]),
        feed_forward=feed_forward_recall(model, exclude=triggers),
    )
    lap("memory_recall")

    comp = None
    if composition and model.cfg.n_layers > 1:
        comp = composition_scores(model)
        lap("composition")

    metrics = None
    if task is not None:
        metrics = task_metrics(
            model,
            task=task,
            batch_size=task_batch_size,
            seed=seed,
            prev_head=p if p is not None else (0, 0),
            induction_head=i,
        )
        lap("task")

    return ProbeSuiteResult(
        model=name or model.cfg.model_name,
        n_layers=model.cfg.n_layers,
        n_heads=model.cfg.n_heads,
        attention=attention,
        induction_loss=loss,
        memory=memory,
        composition=comp,
        task=metrics,
        settings={
            "length": length,
            "batch_size": batch_size,
            "seed": seed,
            "exclude_bos": exclude_bos,
            "n_tokens": n_tokens,
            "bos": tokens.shape[1] == 2 * length + 1,
        },
        timings=timings,
    )
