"""Q-, K- and V-composition scores between heads in different layers (Elhage et al. 2021).

    comp = composition_scores(model)
    comp.k[0, 0, 1, 0]          # how much L0H0's output feeds L1H0's keys
    comp.top(5, mode="K")       # [(l1, h1, l2, h2, score), ...]

Score(A -> B) = ||W_OV^A M^B||_F / (||W_OV^A||_F ||M^B||_F) with, in TransformerLens's
row-vector convention, W_OV = W_V W_O and M = W_Q W_K^T (Q), W_K W_Q^T (K) or W_V W_O (V):
the same numbers as ``HookedTransformer.all_composition_scores``. Pairs whose later
head is not in a later layer are NaN (TransformerLens writes 0 there).

Speed: every matrix here has rank d_head, so each Frobenius norm is taken on
d_head-sized factors (a QR per head, then one d_head x d_model x d_head product per
pair) instead of d_model x d_model products.
"""

from __future__ import annotations

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


def _left_factor(a: torch.Tensor) -> torch.Tensor:
    """R with ||a X||_F = ||R X||_F for every X (a = Q R, Q with orthonormal columns)."""
    return torch.linalg.qr(a, mode="r")[1] if a.shape[-2] >= a.shape[-1] else a


@torch.inference_mode()
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

    # Left side, for every head A: W_OV^A = W_V W_O = Q_a (R_a W_O); keep L_a = R_a W_O.
    left = _left_factor(w_v) @ w_o  # [L, H, dh, d]
    left_norm = left.flatten(-2).norm(dim=-1)
    # Right side, for every head B: M = A_b B_b; with B_b^T = Q_b R_b, keep R_b' = A_b R_b^T.
    factors = {"Q": (w_q, w_k), "K": (w_k, w_q), "V": (w_v, w_o.transpose(-1, -2))}
    out = {}
    for mode in MODES:
        scores = torch.full((n_layers, n_heads, n_layers, n_heads), float("nan"))
        if mode in modes:
            a, b_t = factors[mode]
            right = a @ _left_factor(b_t).transpose(-1, -2)  # [L, H, d, dh]
            right_norm = right.flatten(-2).norm(dim=-1)
            for l1 in range(n_layers - 1):
                later = right[l1 + 1 :]  # [L', H, d, dh]
                prod = torch.einsum("aij,lbjk->albik", left[l1], later)  # [H, L', H, dh, dh]
                norms = prod.flatten(-2).norm(dim=-1)
                denom = left_norm[l1][:, None, None] * right_norm[l1 + 1 :][None]
                scores[l1, :, l1 + 1 :] = (norms / denom).cpu()
        out[mode.lower()] = scores
    return CompositionScores(**out)
