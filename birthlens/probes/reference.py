"""TransformerLens's ``head_detector.detect_head`` run on OUR token prompts, for comparison.

    tl = detect_head_scores(model, tokens, "induction")   # (n_layers, n_heads), one prompt at a time
    spearman(tl, attention_scores(model, tokens).induction.values)

``detect_head`` takes text and tokenizes it itself, which random token prompts do not
survive (and the toy has no tokenizer). So for the duration of the call, the model's
``to_tokens`` hands back the prompt's ids for a placeholder string. Everything else
(one full ``run_with_cache`` per prompt and per head type, the "mul" score) is TL's own.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from birthlens.errors import BirthlensError

TL_HEAD_NAMES = {
    "prev_token": "previous_token_head",
    "induction": "induction_head",
    "duplicate_token": "duplicate_token_head",
}
PLACEHOLDER = "birthlens-prompt-{}"


@contextmanager
def prompts_as_text(model, tokens: torch.Tensor):
    """Within the block, ``model.to_tokens(PLACEHOLDER.format(i))`` returns tokens[i:i+1]."""
    rows = tokens.to(model.cfg.device)

    def to_tokens(text, *args, **kwargs):
        if isinstance(text, str):
            return rows[int(text.rsplit("-", 1)[1])][None]
        return torch.stack([rows[int(t.rsplit("-", 1)[1])] for t in text])

    model.to_tokens = to_tokens  # an instance attribute shadows the method
    try:
        yield [PLACEHOLDER.format(i) for i in range(len(rows))]
    finally:
        del model.to_tokens


def detect_head_scores(model, tokens: torch.Tensor, score: str, exclude_bos: bool = False) -> torch.Tensor:
    """TL's ``detect_head`` scores for ``score`` (prev_token, induction, duplicate_token), averaged over prompts."""
    from transformer_lens.head_detector import detect_head

    if score not in TL_HEAD_NAMES:
        raise BirthlensError(f"unknown head type {score!r}; choose from {', '.join(TL_HEAD_NAMES)}")
    with prompts_as_text(model, tokens) as prompts:
        return detect_head(model, prompts, TL_HEAD_NAMES[score], exclude_bos=exclude_bos).float().cpu()


def _ranks(values) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    order = x.argsort(kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse = np.unique(x, return_inverse=True)
    # Ties share their average rank.
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def spearman(a, b) -> float:
    """Spearman rank correlation of two equally shaped score tables (NaN-free)."""
    a = a.numpy() if isinstance(a, torch.Tensor) else a
    b = b.numpy() if isinstance(b, torch.Tensor) else b
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])
