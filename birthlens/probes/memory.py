"""Memory recall (PAPER.md section 4): read a weight matrix as an associative memory.

    ov_recall(model, head=(1, 0))                          # W_U^T W_O W_V w_E(k) -> k ?
    qk_recall(model, prev_head=(0, 0), induction_head=(1, 0))
    positional_recall(model, head=(0, 0))                  # p_t attends p_{t-1} ?
    feed_forward_recall(model)                             # KL(pi_b(.|k) || read-out of the MLP)

Each returns a ``Recall``: a top-1 fraction (or, for the feed-forward, a KL in nats),
the mean rank of the right answer, the chance level, and, when the probe does not
apply to the model, ``value=None`` with the reason.

On the paper's simplified toy (no layer norm, no biases) these are exactly the
paper's probes (wo1, wk1, wk0, ff1 in its reference code). On other models two
choices make them general: a vector entering a head first goes through that
head's input norm (``blocks[l].ln1``) and a read-out goes through ``ln_final``
(both identities on the toy), and biases are left out. Rotary models rotate
queries and keys by position; the QK probe reads the content part only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F

from birthlens.errors import BirthlensError
from birthlens.probes.heads import Head, HeadScores, check_head, check_heads
from birthlens.probes.prompts import model_device, ordinary_token_floor

RecallProbe = Literal["ov", "qk", "positional", "feed_forward"]

# Above this vocabulary size the token probes use a seeded sample of tokens.
DEFAULT_N_TOKENS = 512

NO_ABSOLUTE_POSITIONS = (
    "not applicable: the model has no learned absolute positional embeddings "
    "(positional_embedding_type={kind!r})"
)
NO_FEED_FORWARD = "not applicable: the model has no feed-forward layers"
NO_BIGRAM_TABLE = (
    "not applicable: no bigram table for this vocabulary ({d_vocab} tokens; "
    "the shipped table covers {size} characters; pass bigram=...)"
)
SAME_LAYER = "not applicable: the induction head (layer {i}) must come after the previous-token head (layer {p})"
VOCAB_MISMATCH = "not applicable: input and output vocabularies differ ({d_vocab} vs {d_vocab_out})"
BAD_TOKEN_SET_ERR = "token set must be a non-empty list of ids in [0, {d_vocab}), got {what}"
BAD_BIGRAM_ERR = "bigram table must be a ({v}, {v}) row-stochastic tensor, got shape {shape}"


@dataclass
class Recall:
    """One memory-recall measurement.

    ``value`` is the fraction of items recalled top-1 (``metric="top1"``) or the mean
    KL divergence in nats (``metric="kl"``, lower is better); ``None`` when the probe
    does not apply, with ``reason`` saying why. ``mean_rank`` is 1 for perfect recall.
    """

    probe: str
    heads: tuple[Head, ...]
    value: float | None
    metric: str = "top1"
    mean_rank: float | None = None
    chance: float | None = None
    n: int = 0
    reason: str | None = None

    @property
    def applicable(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict:
        return {
            "probe": self.probe,
            "heads": [list(h) for h in self.heads],
            "value": self.value,
            "metric": self.metric,
            "mean_rank": self.mean_rank,
            "chance": self.chance,
            "n": self.n,
            "applicable": self.applicable,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        where = "".join(f" L{l}H{h}" for l, h in self.heads)
        if not self.applicable:
            return f"{self.probe}{where}: {self.reason}"
        if self.metric == "kl":
            return f"{self.probe}{where}: KL {self.value:.4f} nats (uniform read-out {self.chance:.4f})"
        return f"{self.probe}{where}: {self.value:.3f} top-1 (chance {self.chance:.3f}), mean rank {self.mean_rank:.1f}"


# ---- helpers ---------------------------------------------------------------


def _normed(model, norm, x: torch.Tensor) -> torch.Tensor:
    from transformer_lens.utilities.architectures import POST_NORM_ARCHITECTURES

    if norm is None or model.cfg.original_architecture in POST_NORM_ARCHITECTURES:
        return x  # post-norm blocks normalise a sublayer's output, not its input
    return norm(x.unsqueeze(0)).squeeze(0)


def _head_input(model, layer: int, x: torch.Tensor) -> torch.Tensor:
    """What the heads of ``layer`` see of residual vectors x: the block's input norm applied."""
    return _normed(model, model.blocks[layer].ln1, x)


def _read_out(model, x: torch.Tensor) -> torch.Tensor:
    """Logits (without bias) that residual vectors x produce through ln_final and W_U."""
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x.unsqueeze(0)).squeeze(0)
    return x @ model.W_U


def _ov(model, head: Head, x: torch.Tensor) -> torch.Tensor:
    layer, h = head
    return _head_input(model, layer, x) @ model.W_V[layer, h] @ model.W_O[layer, h]


def _rank_stats(scores: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """Top-1 fraction (argmax, as in the paper) and mean 1-based rank of ``targets``.

    Ties share the middle rank, so a memory that stores nothing (all scores equal)
    ranks at (n + 1) / 2, like a random one, rather than at 1.
    """
    rows = torch.arange(scores.shape[0], device=scores.device)
    right = scores[rows, targets][:, None]
    ties = (scores == right).sum(dim=-1) - 1
    rank = (scores > right).sum(dim=-1) + 1 + 0.5 * ties
    return float((scores.argmax(dim=-1) == targets).float().mean()), float(rank.float().mean())


def token_set(model, tokens=None, n_tokens: int | None = DEFAULT_N_TOKENS, seed: int = 0) -> torch.Tensor:
    """The tokens a token probe runs on: ``tokens`` if given, all tokens for small
    vocabularies, else a seeded sample of ``n_tokens`` ordinary tokens (sorted)."""
    d_vocab = model.cfg.d_vocab
    if tokens is not None:
        ids = torch.as_tensor(tokens, dtype=torch.long).flatten() if not isinstance(tokens, torch.Tensor) else tokens.long().flatten()
        if ids.numel() == 0 or int(ids.min()) < 0 or int(ids.max()) >= d_vocab:
            raise BirthlensError(BAD_TOKEN_SET_ERR.format(d_vocab=d_vocab, what=ids.tolist()[:8]))
        return ids.to(model_device(model))
    if n_tokens is None or d_vocab <= n_tokens:
        return torch.arange(d_vocab, device=model_device(model))
    low = ordinary_token_floor(model)
    gen = torch.Generator().manual_seed(int(seed))
    sample = low + torch.randperm(d_vocab - low, generator=gen)[:n_tokens]
    return sample.sort().values.to(model_device(model))


# ---- the four probes ------------------------------------------------------


@torch.no_grad()
def ov_recall(model, head, *, tokens=None, n_tokens: int | None = DEFAULT_N_TOKENS, seed: int = 0) -> Recall:
    """Fraction of tokens k whose read-out W_U^T W_O W_V w_E(k) is k itself (copying).

        ov_recall(model, (1, 0))                 # the paper's W_O^2 probe on the toy
        ov_recall(smollm2, (17, 3), n_tokens=512) # a seeded sample on a 49k vocabulary

    The candidates are the whole output vocabulary; the queries are ``tokens``
    (default: all, or ``n_tokens`` sampled with ``seed`` for large vocabularies).
    """
    head = check_head(model, head)
    if model.cfg.d_vocab != model.cfg.d_vocab_out:
        return Recall("ov", (head,), None, reason=VOCAB_MISMATCH.format(d_vocab=model.cfg.d_vocab, d_vocab_out=model.cfg.d_vocab_out))
    ids = token_set(model, tokens, n_tokens, seed)
    logits = _read_out(model, _ov(model, head, model.W_E[ids]))
    top1, rank = _rank_stats(logits, ids)
    d_out = model.cfg.d_vocab_out
    return Recall("ov", (head,), top1, mean_rank=rank, chance=1 / d_out, n=len(ids))


@torch.no_grad()
def qk_recall(
    model,
    prev_head,
    induction_head,
    *,
    tokens=None,
    n_tokens: int | None = DEFAULT_N_TOKENS,
    seed: int = 0,
) -> Recall:
    """Fraction of tokens q whose query picks, among the keys that ``prev_head`` writes
    for every token j (W_K^I W_O^P W_V^P w_E(j)), the key of j = q (prefix matching).

        qk_recall(model, prev_head=(0, 0), induction_head=(1, 0))   # the paper's W_K^2 probe
        qk_recall(model, (0, 0), (1, 0), tokens=batch.triggers[0])   # fixed triggers only

    Queries and candidate keys are the same token set (``tokens``, all tokens, or a
    seeded sample), as in the paper, which restricts both to the triggers when they
    are fixed.
    """
    p, i = check_head(model, prev_head), check_head(model, induction_head)
    if p[0] >= i[0]:
        return Recall("qk", (p, i), None, reason=SAME_LAYER.format(i=i[0], p=p[0]))
    ids = token_set(model, tokens, n_tokens, seed)
    emb = model.W_E[ids]
    queries = _head_input(model, i[0], emb) @ model.W_Q[i]
    written = _ov(model, p, emb)  # what P adds at the position after token j
    keys = _head_input(model, i[0], written) @ model.W_K[i]
    targets = torch.arange(len(ids), device=ids.device)
    top1, rank = _rank_stats(queries @ keys.T, targets)
    return Recall("qk", (p, i), top1, mean_rank=rank, chance=1 / len(ids), n=len(ids))


def has_absolute_positions(model) -> bool:
    return model.cfg.positional_embedding_type in ("standard", "shortformer")


@torch.no_grad()
def positional_recall(model, head, *, n_positions: int | None = None) -> Recall:
    """Fraction of positions t >= 1 whose query p_t W_Q picks the key p_{t-1} W_K among
    all keys p_s W_K, s < n_positions - 1 (the paper's W_K^1 probe; not causal-masked).

        positional_recall(model, (0, 0))                 # all n_ctx positions
        positional_recall(model, (0, 0), n_positions=64)  # the paper's "first 64" variant

    Not applicable (value None, with the reason) without learned absolute positions.
    """
    head = check_head(model, head)
    kind = model.cfg.positional_embedding_type
    if not has_absolute_positions(model):
        return Recall("positional", (head,), None, reason=NO_ABSOLUTE_POSITIONS.format(kind=kind))
    n = model.cfg.n_ctx if n_positions is None else min(int(n_positions), model.cfg.n_ctx)
    if n < 2:
        raise BirthlensError(f"n_positions={n_positions}: need at least 2 positions")
    pos = model.W_pos[:n]
    if kind == "standard":
        pos = _head_input(model, head[0], pos)
    # (Shortformer adds positions to the query and key inputs after the norm.)
    queries = pos[1:] @ model.W_Q[head]
    keys = pos[:-1] @ model.W_K[head]
    targets = torch.arange(n - 1, device=pos.device)
    top1, rank = _rank_stats(queries @ keys.T, targets)
    return Recall("positional", (head,), top1, mean_rank=rank, chance=1 / (n - 1), n=n - 1)


@torch.no_grad()
def feed_forward_recall(
    model,
    *,
    layer: int = -1,
    bigram: torch.Tensor | None = None,
    exclude: Sequence[int] | torch.Tensor | None = None,
) -> Recall:
    """Mean KL(pi_b(.|k) || softmax(W_U^T F(w_E(k)))) over tokens k: how well the
    feed-forward F of ``layer`` alone stores the bigram conditionals (global memory).

        feed_forward_recall(toy)                       # shipped tiny-Shakespeare bigrams
        feed_forward_recall(toy, exclude=triggers)     # the paper leaves fixed triggers out

    ``bigram`` is a (V, V) row-stochastic table; by default the shipped table when
    the model's vocabulary is its 65 characters, otherwise not applicable.
    """
    layer_index = range(model.cfg.n_layers)[layer]
    if model.cfg.attn_only:
        return Recall("feed_forward", (), None, metric="kl", reason=NO_FEED_FORWARD)
    d_vocab = model.cfg.d_vocab
    if bigram is None:
        from birthlens.datasets.corpus import default_stats

        stats = default_stats()
        if stats.size != d_vocab or model.cfg.d_vocab_out != d_vocab:
            return Recall("feed_forward", (), None, metric="kl", reason=NO_BIGRAM_TABLE.format(d_vocab=d_vocab, size=stats.size))
        bigram = stats.bigram_probs()
    bigram = torch.as_tensor(bigram)
    if bigram.shape != (d_vocab, d_vocab) or model.cfg.d_vocab_out != d_vocab:
        raise BirthlensError(BAD_BIGRAM_ERR.format(v=d_vocab, shape=tuple(bigram.shape)))
    keep = torch.ones(d_vocab, dtype=torch.bool)
    if exclude is not None:
        keep[torch.as_tensor(exclude, dtype=torch.long).flatten().cpu()] = False
    ids = torch.nonzero(keep).flatten().to(model_device(model))
    block = model.blocks[layer_index]
    x = _normed(model, getattr(block, "ln2", None), model.W_E[ids])
    # The feed-forward output alone, without the residual x, as in the paper's probe.
    logits = _read_out(model, block.mlp(x.unsqueeze(0)).squeeze(0)).float()
    target = bigram.to(logits.device, torch.float32)[ids]
    kl = F.kl_div(F.log_softmax(logits, dim=-1), target, reduction="batchmean")
    # A read-out that knows nothing (uniform) scores mean_k (log V - H(pi_b(.|k))).
    uniform = F.kl_div(torch.full_like(logits, -torch.log(torch.tensor(float(d_vocab)))), target, reduction="batchmean")
    return Recall("feed_forward", (), float(kl), metric="kl", chance=float(uniform), n=len(ids))


# ---- per-head maps (for heatmaps) -------------------------------------------


def recall_map(model, probe: Literal["ov", "positional"] = "ov", heads=None, **kwargs) -> HeadScores:
    """A (n_layers, n_heads) table of one per-head probe (NaN where not measured).

        recall_map(toy, "ov").values        # every head of a small model
        recall_map(smollm2, "ov", heads=[(17, 3), (18, 0)], n_tokens=256)
    """
    fn = {"ov": ov_recall, "positional": positional_recall}.get(probe)
    if fn is None:
        raise BirthlensError(f"unknown per-head recall probe {probe!r}; choose ov or positional")
    table = torch.full((model.cfg.n_layers, model.cfg.n_heads), float("nan"))
    for head in check_heads(model, heads):
        result = fn(model, head, **kwargs)
        if result.applicable:
            table[head] = result.value
    return HeadScores(f"{probe}_recall", table)
