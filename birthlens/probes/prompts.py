"""Token inputs for probes: checks, text, and [BOS] A A repeated sequences fitted to a model.

    tokens = repeated_prompts(model, length=50, batch_size=8, seed=0)   # (8, [1 +] 100)
    tokens = as_tokens(model, "some text")                              # needs a tokenizer
"""

from __future__ import annotations

import torch

from birthlens.datasets.repeated import repeated_tokens
from birthlens.errors import BirthlensError

EMPTY_BATCH_ERR = "empty batch: need at least one sequence of at least {min_len} tokens, got shape {shape}"
TOO_LONG_ERR = "sequences of {n} tokens are longer than the model's context of {n_ctx} tokens"
NO_TOKENIZER_ERR = "this model has no tokenizer, so it cannot read text; pass token ids instead"
TOKEN_RANGE_ERR = "token ids must lie in [0, {d_vocab}), got values from {lo} to {hi}"
RAGGED_TEXT_ERR = "the prompts tokenize to different lengths ({lengths}); pass prompts of equal token length or token ids"
BAD_TOKENS_ERR = "tokens must be a (batch, position) tensor of integer ids, got {what}"


def model_device(model) -> torch.device:
    """Where the model's weights live: probes follow the model rather than assume a device."""
    return model.W_E.device


def default_bos(model) -> int | None:
    """The BOS id the model expects in front of a sequence, or None (the toy has no BOS)."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not model.cfg.default_prepend_bos:
        return None
    return tokenizer.bos_token_id


def ordinary_token_floor(model) -> int:
    """Smallest id to draw random tokens from, keeping special tokens out.

    Tokenizers put special tokens first (SmolLM2: ids 0..16) or last (GPT-2: 50256);
    only the ones at the start of the vocabulary are worth skipping, a single one
    at the end is drawn with negligible probability.
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return 0
    low_specials = [i for i in getattr(tokenizer, "all_special_ids", []) if i < model.cfg.d_vocab // 2]
    return max(low_specials) + 1 if low_specials else 0


def check_tokens(model, tokens, min_len: int = 2) -> torch.Tensor:
    """Validate a (batch, pos) id tensor against the model and move it to the model's device."""
    if not isinstance(tokens, torch.Tensor) or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        what = f"{type(tokens).__name__}" + (f" of {tokens.dtype}" if isinstance(tokens, torch.Tensor) else "")
        raise BirthlensError(BAD_TOKENS_ERR.format(what=what))
    if tokens.dim() == 1:
        tokens = tokens.unsqueeze(0)
    if tokens.dim() != 2:
        raise BirthlensError(BAD_TOKENS_ERR.format(what=f"a tensor of shape {tuple(tokens.shape)}"))
    if tokens.shape[0] == 0 or tokens.shape[1] < min_len:
        raise BirthlensError(EMPTY_BATCH_ERR.format(min_len=min_len, shape=tuple(tokens.shape)))
    if tokens.shape[1] > model.cfg.n_ctx:
        raise BirthlensError(TOO_LONG_ERR.format(n=tokens.shape[1], n_ctx=model.cfg.n_ctx))
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= model.cfg.d_vocab:
        raise BirthlensError(TOKEN_RANGE_ERR.format(d_vocab=model.cfg.d_vocab, lo=lo, hi=hi))
    return tokens.long().to(model_device(model))


def as_tokens(model, prompts, min_len: int = 2) -> torch.Tensor:
    """Token ids from ids (returned checked) or from text (a string or a list of strings)."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if isinstance(prompts, (list, tuple)) and prompts and all(isinstance(p, str) for p in prompts):
        if getattr(model, "tokenizer", None) is None:
            raise BirthlensError(NO_TOKENIZER_ERR)
        rows = [model.to_tokens(p, truncate=False)[0] for p in prompts]
        lengths = sorted({len(r) for r in rows})
        if len(lengths) > 1:
            raise BirthlensError(RAGGED_TEXT_ERR.format(lengths=", ".join(map(str, lengths))))
        prompts = torch.stack(rows)
    elif isinstance(prompts, (list, tuple)) and not prompts:
        raise BirthlensError(EMPTY_BATCH_ERR.format(min_len=min_len, shape=(0,)))
    return check_tokens(model, prompts, min_len=min_len)


DEFAULT_LENGTH = 50


def fitted_length(model, length: int | None, bos_id: int | None) -> int:
    """``length`` itself, or (None) the default 50 shortened to fit the context twice."""
    if length is not None:
        return int(length)
    return max(1, min(DEFAULT_LENGTH, (model.cfg.n_ctx - (bos_id is not None)) // 2))


def repeated_prompts(
    model,
    length: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    bos: int | None | str = "auto",
) -> torch.Tensor:
    """[BOS] A A with A uniform random ordinary tokens, on the model's device.

    ``length=None`` takes 50 or what fits the model's context; ``bos="auto"`` uses the
    tokenizer's BOS when the model prepends one, none otherwise (the toy).
    """
    bos_id = default_bos(model) if bos == "auto" else bos
    length = fitted_length(model, length, bos_id)
    n = 2 * length + (bos_id is not None)
    if length >= 1 and n > model.cfg.n_ctx:
        raise BirthlensError(TOO_LONG_ERR.format(n=n, n_ctx=model.cfg.n_ctx) + f" (length={length} repeated twice)")
    tokens = repeated_tokens(batch_size, length, model.cfg.d_vocab, seed=seed, bos=bos_id, low=ordinary_token_floor(model))
    return tokens.to(model_device(model))
