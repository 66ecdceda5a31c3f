"""Hand-built HookedTransformers with known answers, to check that probes find what is there.

    model = planted_induction_model()     # L0H0: exact previous-token head, L1H0: exact induction head
    attention_scores(model).induction[1, 0]   # ~1.0

    model = associative_memory_model(store=True)   # W_O^2, W_K^2, W_K^1 built as sum_i v_i u_i^T
    ov_recall(model, (1, 0)).value                   # 1.0; store=False gives chance level
"""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

# A pre-softmax logit this large makes a matching key take essentially all the attention.
SHARP = 40.0


def _ensure_identity_activation() -> None:
    # The toy's linear feed-forward is a TransformerLens MLP with an identity activation.
    from transformer_lens.utilities.activation_functions import SUPPORTED_ACTIVATIONS

    SUPPORTED_ACTIVATIONS.setdefault("identity", lambda x: x)


def _zero_model(cfg: HookedTransformerConfig) -> HookedTransformer:
    model = HookedTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model.eval()


def planted_induction_model(d_vocab: int = 64, n_ctx: int = 128, n_heads: int = 2, seed: int = 0) -> HookedTransformer:
    """Two attention-only layers where L0H0 attends exactly to the previous position and
    L1H0 exactly to the position after an earlier copy of the current token (K-composition:
    L1H0's keys read what L0H0 wrote), then copies that token to the logits.

    The residual stream has four one-hot blocks: token, position, "previous token"
    (written by L0H0) and "output" (written by L1H0, read by W_U). The other heads have
    zero query/key weights (uniform attention) and small random value/output weights.
    """
    v, n = d_vocab, n_ctx
    tok, pos, prev, out = 0, v, v + n, 2 * v + n
    d_head = max(v, n)
    cfg = HookedTransformerConfig(
        n_layers=2, n_heads=n_heads, d_model=3 * v + n, d_head=d_head, d_vocab=v, n_ctx=n,
        attn_only=True, normalization_type=None, positional_embedding_type="standard",
        use_attn_scale=False, act_fn=None, seed=seed,
    )
    model = _zero_model(cfg)
    gen = torch.Generator().manual_seed(seed)
    eye_v, eye_n = torch.eye(v), torch.eye(n)
    with torch.no_grad():
        model.W_E[:, tok:tok + v] = eye_v
        model.W_pos[:, pos:pos + n] = eye_n
        a0, a1 = model.blocks[0].attn, model.blocks[1].attn
        # L0H0: query at t looks for the key position s with s + 1 = t.
        a0.W_Q[0, pos:pos + n, :n] = SHARP * eye_n
        a0.W_K[0, pos:pos + n - 1, 1:n] = eye_n[:-1, :-1]
        a0.W_V[0, tok:tok + v, :v] = eye_v
        a0.W_O[0, :v, prev:prev + v] = eye_v
        # L1H0: query token q matches keys whose previous token is q; copy the token there.
        a1.W_Q[0, tok:tok + v, :v] = SHARP * eye_v
        a1.W_K[0, prev:prev + v, :v] = eye_v
        # Position 0 has no previous token, but L0H0 (attending to itself there) still
        # writes one; a negative key bias on position 0 keeps L1H0 from matching it.
        a1.W_K[0, pos, :v] = -1.0
        a1.W_V[0, tok:tok + v, :v] = eye_v
        a1.W_O[0, :v, out:out + v] = eye_v
        model.W_U[out:out + v, :] = SHARP * eye_v
        for attn in (a0, a1):
            for h in range(1, n_heads):
                attn.W_V[h] = 0.01 * torch.randn(attn.W_V[h].shape, generator=gen)
                attn.W_O[h] = 0.01 * torch.randn(attn.W_O[h].shape, generator=gen)
    return model


def associative_memory_model(
    d_vocab: int = 65,
    n_ctx: int = 64,
    d_model: int = 256,
    store: bool = True,
    feed_forward: bool = False,
    bigram: torch.Tensor | None = None,
    seed: int = 0,
) -> HookedTransformer:
    """The paper's simplified toy (2 layers, 1 head, d_model = d_head, no norm, W_Q = I,
    random Gaussian W_E, W_U, W_pos, W_V, W_O^1) with its three learned memories either
    written as associative memories W = sum_i v_i u_i^T (``store=True``) or random:

    - W_K^1 = sum_t p_t^T p_{t+1}: position t's query finds the key of t - 1;
    - W_K^2 = sum_j (w_E(j) W_V^1 W_O^1)^T w_E(j): token q finds the key of the
      position where layer 0 wrote "the previous token was q";
    - W_O^2 = sum_k (w_E(k) W_V^2)^T W_U[:, k]^T: the value of k reads out as k.

    With ``feed_forward`` a linear MLP (W_in = I) follows layer 1; with ``store`` its
    W_out maps w_E(k) to logits log pi_b(.|k) exactly (needs d_model >= d_vocab).
    """
    d = d_model
    if feed_forward:
        _ensure_identity_activation()
    cfg = HookedTransformerConfig(
        n_layers=2, n_heads=1, d_model=d, d_head=d, d_vocab=d_vocab, n_ctx=n_ctx,
        attn_only=not feed_forward, d_mlp=d if feed_forward else None,
        act_fn="identity" if feed_forward else None,
        normalization_type=None, positional_embedding_type="standard", seed=seed,
    )
    model = _zero_model(cfg)
    gen = torch.Generator().manual_seed(seed)

    def gaussian(*shape):
        return torch.randn(*shape, generator=gen) / d**0.5

    with torch.no_grad():
        model.W_E[:] = gaussian(d_vocab, d)  # rows of norm ~1: near-orthogonal in high dimension
        model.W_U[:] = gaussian(d, d_vocab)
        model.W_pos[:] = gaussian(n_ctx, d)
        a0, a1 = model.blocks[0].attn, model.blocks[1].attn
        eye = torch.eye(d)
        a0.W_Q[0], a1.W_Q[0] = eye, eye
        for w in (a0.W_V, a0.W_O, a1.W_V):
            w[0] = gaussian(d, d)
        if store:
            p = model.W_pos
            a0.W_K[0] = p[:-1].T @ p[1:]  # p_s W_K ~ p_{s+1}, so p_t . k_s peaks at s = t - 1
            written = model.W_E @ a0.W_V[0] @ a0.W_O[0]  # what layer 0 writes after token j
            a1.W_K[0] = written.T @ model.W_E  # key of "after j" ~ w_E(j)
            values = model.W_E @ a1.W_V[0]
            a1.W_O[0] = values.T @ model.W_U.T  # value of k ~ W_U[:, k]
        else:
            a0.W_K[0], a1.W_K[0], a1.W_O[0] = gaussian(d, d), gaussian(d, d), gaussian(d, d)
        if feed_forward:
            mlp = model.blocks[1].mlp
            mlp.W_in[:] = eye
            if store and bigram is not None:
                target = torch.log(bigram.float().clamp(min=1e-9))  # (V, V) logits wanted
                # Solve w_E(k) W_out W_U = target[k] in the least-squares sense.
                mlp.W_out[:] = torch.linalg.pinv(model.W_E) @ target @ torch.linalg.pinv(model.W_U)
            else:
                mlp.W_out[:] = gaussian(d, d)
    return model
