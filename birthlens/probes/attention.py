"""Attention-pattern scores per head: previous-token, induction and duplicate-token.

    scores = attention_scores(model)                    # [BOS] A A prompts drawn for the model
    scores.induction.top(3)                             # [(layer, head, score), ...]
    scores = attention_scores(model, tokens=my_tokens)  # any (batch, pos) ids, or text with a tokenizer

The same three patterns as TransformerLens's ``head_detector`` (previous token,
earlier copies of the current token, and the token right after an earlier copy),
but computed for every head and every prompt in ONE batched forward pass: a hook
on each layer's ``hook_pattern`` reduces the (batch, head, query, key) pattern to
per-head sums on the spot, so no activation is kept.

A head's score is the attention it pays to the expected keys divided by all the
attention it pays, summed over the query positions that HAVE an expected key (in
[BOS] A A, only the second copy has earlier copies). A perfect head scores 1.
TransformerLens divides by every query position instead, so its induction scores
on [BOS] A A top out near 1/2; rankings agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence, get_args

import torch

from birthlens.errors import BirthlensError
from birthlens.probes.heads import HeadScores
from birthlens.probes.prompts import as_tokens, repeated_prompts

ScoreName = Literal["prev_token", "induction", "duplicate_token"]
SCORE_NAMES: tuple[str, ...] = get_args(ScoreName)

UNKNOWN_SCORE_ERR = "unknown attention score {name!r}; choose from " + ", ".join(SCORE_NAMES)


def detection_masks(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """(batch, query, key) boolean masks of the keys each kind of head should attend to.

    - prev_token: key = query - 1;
    - duplicate_token: earlier positions holding the same token as the query;
    - induction: positions right after an earlier copy of the query's token
      (key j with tokens[j - 1] == tokens[query], j <= query), as in head_detector.
    """
    batch, n = tokens.shape
    idx = torch.arange(n, device=tokens.device)
    prev = (idx[:, None] - 1 == idx[None, :]).expand(batch, n, n)
    same = tokens[:, :, None] == tokens[:, None, :]  # [b, q, k]
    duplicate = same & (idx[None, :] < idx[:, None])
    # Induction key j marks the position after key j - 1 that duplicates the query.
    induction = torch.zeros_like(same)
    induction[:, :, 1:] = same[:, :, :-1] & (idx[None, :-1] < idx[:, None])
    return {"prev_token": prev, "induction": induction, "duplicate_token": duplicate}


@dataclass
class AttentionScores:
    """Per-head attention scores plus the prompts' description (for reports and JSON)."""

    prev_token: HeadScores
    induction: HeadScores
    duplicate_token: HeadScores
    n_sequences: int
    seq_len: int
    exclude_bos: bool
    settings: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> HeadScores:
        if name not in SCORE_NAMES:
            raise BirthlensError(UNKNOWN_SCORE_ERR.format(name=name))
        return getattr(self, name)

    def top(self, n: int = 5, score: ScoreName = "induction") -> list[tuple[int, int, float]]:
        return self[score].top(n)

    def to_dict(self) -> dict:
        return {
            **{name: self[name].to_dict()["values"] for name in SCORE_NAMES},
            "n_sequences": self.n_sequences,
            "seq_len": self.seq_len,
            "exclude_bos": self.exclude_bos,
            **self.settings,
        }


def _pattern_reducer(masks: dict[str, torch.Tensor], exclude_bos: bool, sums: dict):
    """A hook that folds one layer's pattern into per-head (expected, total) attention sums."""
    # Rows with no expected key carry no information about that head type.
    valid = {name: mask.any(dim=-1).to(torch.float32) for name, mask in masks.items()}
    weights = {name: mask.to(torch.float32) for name, mask in masks.items()}

    def hook(pattern: torch.Tensor, hook) -> None:
        pattern = pattern.float()
        if exclude_bos:
            pattern = pattern[..., 1:]
        row_mass = pattern.sum(dim=-1)  # [b, h, q]
        for name, weight in weights.items():
            w = weight[..., 1:] if exclude_bos else weight
            expected = torch.einsum("bhqk,bqk->h", pattern, w)
            total = torch.einsum("bhq,bq->h", row_mass, valid[name])
            sums[name][hook.layer()] = (expected, total)

    return hook


@torch.no_grad()
def score_attention(
    model,
    tokens: torch.Tensor,
    exclude_bos: bool = False,
    return_logits: bool = False,
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """The three (n_layers, n_heads) score tensors from one forward pass over ``tokens``.

    With ``return_logits`` the same pass also returns the logits (so the suite gets
    induction loss without a second pass); otherwise the unembedding is skipped.
    """
    masks = detection_masks(tokens)
    sums = {name: {} for name in SCORE_NAMES}
    hook = _pattern_reducer(masks, exclude_bos, sums)
    logits = model.run_with_hooks(
        tokens,
        return_type="logits" if return_logits else None,
        fwd_hooks=[(lambda name: name.endswith("attn.hook_pattern"), hook)],
    )
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    scores = {}
    for name in SCORE_NAMES:
        table = torch.full((n_layers, n_heads), float("nan"))
        for layer, (expected, total) in sums[name].items():
            # A head that puts all its attention on BOS (with exclude_bos) has nothing to score.
            table[layer] = torch.where(total > 0, expected / total.clamp(min=1e-12), torch.nan).cpu()
        scores[name] = table
    return scores, logits


def attention_scores(
    model,
    tokens: torch.Tensor | str | Sequence[str] | None = None,
    *,
    length: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    bos: int | None | str = "auto",
    exclude_bos: bool = False,
) -> AttentionScores:
    """Previous-token, induction and duplicate-token scores for every head.

        scores = attention_scores(model, length=50, batch_size=8, seed=0)
        scores.prev_token.top(3), scores.induction.top(3)

    Without ``tokens``, draws [BOS] A A prompts (A: ``length`` random ordinary tokens,
    by default 50 or what fits the context; ``bos="auto"`` prepends the tokenizer's BOS when the model uses one). ``exclude_bos``
    leaves attention to the first position out of every score.
    """
    if tokens is None:
        tokens = repeated_prompts(model, length=length, batch_size=batch_size, seed=seed, bos=bos)
        settings = {"prompt": "repeated", "length": (tokens.shape[1]) // 2, "seed": seed}
    else:
        tokens = as_tokens(model, tokens)
        settings = {"prompt": "given"}
    scores, _ = score_attention(model, tokens, exclude_bos=exclude_bos)
    return make_attention_scores(scores, tokens, exclude_bos, settings)


def make_attention_scores(scores: dict, tokens: torch.Tensor, exclude_bos: bool, settings: dict) -> AttentionScores:
    return AttentionScores(
        **{name: HeadScores(name, scores[name]) for name in SCORE_NAMES},
        n_sequences=tokens.shape[0],
        seq_len=tokens.shape[1],
        exclude_bos=exclude_bos,
        settings=settings,
    )
