"""Repeated random-token sequences, [BOS] A A, for probing induction in any model.

    tokens = repeated_tokens(batch_size=8, length=50, vocab_size=model.cfg.d_vocab, seed=0, bos=1)
    tokens.shape  # (8, 1 + 2 * 50)
"""

from __future__ import annotations

import torch

from birthlens.errors import BirthlensError


def repeated_tokens(
    batch_size: int,
    length: int,
    vocab_size: int,
    seed: int = 0,
    bos: int | None = None,
    low: int = 0,
) -> torch.Tensor:
    """Random tokens A (uniform over [low, vocab_size)) repeated once: [BOS] A A.

    With ``bos=None`` the sequence starts directly with A. ``low`` lets callers keep
    special tokens (which tokenizers put at the start of the vocabulary) out of A.
    """
    if batch_size < 1 or length < 1:
        raise BirthlensError(f"need batch_size >= 1 and length >= 1, got {batch_size} and {length}")
    if not 0 <= low < vocab_size:
        raise BirthlensError(f"no tokens to draw from: low={low}, vocab_size={vocab_size}")
    gen = torch.Generator().manual_seed(int(seed))
    first = torch.randint(low, vocab_size, (batch_size, length), generator=gen)
    parts = [first, first]
    if bos is not None:
        parts.insert(0, torch.full((batch_size, 1), int(bos), dtype=torch.int64))
    return torch.cat(parts, dim=1)
