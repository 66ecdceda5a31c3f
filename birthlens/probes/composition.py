"""Q-, K- and V-composition scores between heads in different layers (Elhage et al. 2021).

    comp = composition_scores(model)
    comp.k[0, 0, 1, 0]          # how much L0H0's output feeds L1H0's keys
    comp.top(5, mode="K")       # [(l1, h1, l2, h2, score), ...]

Score(A -> B) = ||W_OV^A M^B||_F / (||W_OV^A||_F ||M^B||_F) with, in TransformerLens's
row-vector convention, W_OV = W_V W_O and M = W_Q W_K^T (Q), W_K W_Q^T (K) or W_V W_O (V):
the same numbers as ``HookedTransformer.all_composition_scores``. Pairs whose later
head is not in a later layer are NaN (TransformerLens writes 0 there).

Speed: ||W_OV M||_F^2 = <W_OV^T W_OV, M M^T>_F, so each head contributes one Gram
matrix per side (built from d_head-sized factors) and all pairs of two layers come
from one matrix product of packed Gram matrices: seconds on SmolLM2's 270 heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from birthlens.errors import BirthlensError
from birthlens.probes.heads import tensor_to_json

Mode = Literal["Q", "K", "V"]
MODES: tuple[str, ...] = get_args(Mode)
UNKNOWN_MODE_ERR = "unknown composition mode {mode!r}; choose Q, K or V"


@dataclass
class CompositionScores:
    """(n_layers, n_heads, n_layers, n_heads) scores per mode; [l1, h1, l2, h2] is l1h1 -> l2h2."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor

    def __getitem__(self, mode: str) -> torch.Tensor:
        if mode not in MODES:
            raise BirthlensError(UNKNOWN_MODE_ERR.format(mode=mode))
        return getattr(self, mode.lower())

    def top(self, n: int = 5, mode: Mode = "K") -> list[tuple[int, int, int, int, float]]:
        """The n strongest (earlier head -> later head) pairs for ``mode``."""
        scores = self[mode]
        _, n_heads, _, _ = scores.shape
        flat = scores.flatten()
        measured = torch.nonzero(~torch.isnan(flat)).flatten()
        best = measured[flat[measured].argsort(descending=True, stable=True)[: max(n, 0)]]
        out = []
        for i in best.tolist():
            l1, rest = divmod(i, n_heads * scores.shape[2] * n_heads)
            h1, rest = divmod(rest, scores.shape[2] * n_heads)
            l2, h2 = divmod(rest, n_heads)
            out.append((l1, h1, l2, h2, float(flat[i])))
        return out

    def to_dict(self, full: bool = False, n: int = 10) -> dict:
        """The top ``n`` pairs per mode; with ``full`` also every score (NaN -> null)."""
        out = {mode: [list(p[:4]) + [p[4]] for p in self.top(n, mode)] for mode in MODES}
        out = {"top": out, "shape": list(self.q.shape)}
        if full:
            out.update({mode: tensor_to_json(self[mode]) for mode in MODES})
        return out


def _packed(gram: torch.Tensor) -> torch.Tensor:
    """Symmetric [..., d, d] matrices packed so that packed(G1) . packed(G2) = <G1, G2>_F:
    the diagonal, then sqrt(2) times the upper triangle (half the length of flattening)."""
    d = gram.shape[-1]
    rows, cols = torch.triu_indices(d, d, offset=1, device=gram.device)
    flat = gram.flatten(-2)
    upper = flat.index_select(-1, rows * d + cols) * math.sqrt(2)
    return torch.cat([gram.diagonal(dim1=-2, dim2=-1), upper], dim=-1)


def _sandwich(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """outer^T (inner^T inner) outer per head: a d x d Gram matrix from d_head-sized factors."""
    return outer.transpose(-1, -2) @ (inner.transpose(-1, -2) @ inner) @ outer


@torch.no_grad()
def composition_scores(model, modes: tuple[str, ...] = MODES) -> CompositionScores:
    """Composition scores for every pair of heads in different layers, for each mode.

        comp = composition_scores(model)        # all three modes
        comp.k                                  # (L, H, L, H), NaN unless l1 < l2
    """
    for mode in modes:
        if mode not in MODES:
            raise BirthlensError(UNKNOWN_MODE_ERR.format(mode=mode))
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    w_q, w_k, w_v, w_o = (w.detach().float() for w in (model.W_Q, model.W_K, model.W_V, model.W_O))

    # ||W_OV M||_F^2 = <W_OV^T W_OV, M M^T>_F: one d_model x d_model Gram matrix per head
    # and side, then each pair of heads is a dot product, all pairs of two layers one matmul.
    # Left, head A: W_OV^T W_OV = W_O^T (W_V^T W_V) W_O.
    left = _packed(_sandwich(w_o, w_v))  # [L, H, P]
    # Right, head B, M = A B: M M^T = A (B B^T) A^T; B^T is W_K (Q), W_Q (K) or W_O^T (V).
    factors = {"Q": (w_q, w_k), "K": (w_k, w_q), "V": (w_v, w_o.transpose(-1, -2))}
    d_model = model.cfg.d_model
    out = {}
    for mode in MODES:
        scores = torch.full((n_layers, n_heads, n_layers, n_heads), float("nan"))
        if mode in modes:
            a, b_t = factors[mode]
            right = _packed(_sandwich(a.transpose(-1, -2), b_t))  # [L, H, P]
            # The first d_model packed entries are the diagonal: their sum is the squared norm.
            left_sq = left[..., :d_model].sum(-1)
            right_sq = right[..., :d_model].sum(-1)
            for l1 in range(n_layers - 1):
                prod = left[l1] @ right[l1 + 1 :].flatten(0, 1).T  # [H, L' * H]
                prod = prod.view(n_heads, -1, n_heads).transpose(0, 1)  # [L', H, H]
                denom = left_sq[l1][None, :, None] * right_sq[l1 + 1 :][:, None, :]
                ratio = (prod.clamp(min=0) / denom).sqrt()  # rounding can dip below 0
                scores[l1, :, l1 + 1 :] = ratio.transpose(0, 1).float().cpu()
        out[mode.lower()] = scores
    return CompositionScores(**out)
