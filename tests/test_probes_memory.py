"""Memory recall: associative memories recall 1.0, random weights recall at chance,
and on the paper's simplified toy the probes are exactly the paper's (its reference code)."""

import pytest
import torch
import torch.nn.functional as F
from transformer_lens import HookedTransformer, HookedTransformerConfig

from birthlens.datasets.corpus import default_stats
from birthlens.errors import BirthlensError
from birthlens.probes import feed_forward_recall, ov_recall, positional_recall, qk_recall, recall_map
from birthlens.probes.memory import token_set
from birthlens.probes.planted import associative_memory_model, planted_induction_model

BIGRAM = default_stats().bigram_probs()


@pytest.fixture(scope="module")
def stored():
    return associative_memory_model(store=True, feed_forward=True, bigram=BIGRAM, seed=0)


@pytest.fixture(scope="module")
def random_memory():
    return associative_memory_model(store=False, feed_forward=True, seed=1)


def test_associative_memories_recall_perfectly(stored):
    ov = ov_recall(stored, (1, 0))
    qk = qk_recall(stored, (0, 0), (1, 0))
    pos = positional_recall(stored, (0, 0))
    for recall in (ov, qk, pos):
        assert recall.value == 1.0 and recall.mean_rank == 1.0, recall
    assert ov.n == 65 and pos.n == 63
    assert ov.chance == pytest.approx(1 / 65)
    assert feed_forward_recall(stored).value < 1e-3


def test_random_weights_recall_near_chance(random_memory):
    for recall in (
        ov_recall(random_memory, (1, 0)),
        qk_recall(random_memory, (0, 0), (1, 0)),
        positional_recall(random_memory, (0, 0)),
    ):
        assert recall.value < 0.15, recall
        n_candidates = round(1 / recall.chance)
        assert abs(recall.mean_rank - (n_candidates + 1) / 2) < 0.25 * n_candidates, recall
    ff = feed_forward_recall(random_memory)
    assert ff.value > 0.8 * ff.chance  # no better than a uniform read-out


def test_zero_weights_rank_in_the_middle():
    # The untrained toy has W_O^2 = 0: every token ties, which must not read as rank 1.
    model = associative_memory_model(store=False)
    with torch.no_grad():
        model.blocks[1].attn.W_O.zero_()
    recall = ov_recall(model, (1, 0))
    assert recall.mean_rank == pytest.approx(33.0)


def test_toy_probes_are_the_papers():
    """The paper's reference probes (wo1, wk1, wk0, ff1), written out with the toy's weights."""
    model = associative_memory_model(store=True, feed_forward=True, bigram=BIGRAM, seed=0)
    E, U, P = model.W_E, model.W_U, model.W_pos
    a0, a1 = model.blocks[0].attn, model.blocks[1].attn
    toks = torch.arange(65)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        # Drown the stored memories in noise so the figures are not all 1.0.
        for w in (a1.W_O, a1.W_K, a0.W_K, model.blocks[1].mlp.W_out):
            noise = torch.randn(w.shape, generator=gen)
            w.copy_(w / w.norm() + 12 * noise / noise.norm())
        wo1 = ((E @ a1.W_V[0] @ a1.W_O[0] @ U).argmax(-1) == toks).float().mean()
        keys = E @ a0.W_V[0] @ a0.W_O[0] @ a1.W_K[0]
        wk1 = ((E @ a1.W_Q[0] @ keys.T).argmax(-1) == toks).float().mean()
        triggers = torch.tensor([1, 43, 56, 53, 39])
        keys_t = E[triggers] @ a0.W_V[0] @ a0.W_O[0] @ a1.W_K[0]
        wk1_fixed = ((E[triggers] @ a1.W_Q[0] @ keys_t.T).argmax(-1) == torch.arange(5)).float().mean()
        q, k = P[1:] @ a0.W_Q[0], P[:-1] @ a0.W_K[0]
        wk0 = ((q @ k.T).argmax(-1) == torch.arange(63)).float().mean()
        keep = torch.ones(65, dtype=torch.bool)
        keep[triggers] = False
        ff_logits = (E[keep] @ model.blocks[1].mlp.W_in @ model.blocks[1].mlp.W_out) @ U
        ff1 = F.kl_div(F.log_softmax(ff_logits, dim=1), BIGRAM[keep].float(), reduction="batchmean")
    assert 0.2 < wo1 < 1 and 0.2 < wk1 < 1 and 0.2 < wk0 < 1  # a test that can tell
    assert ov_recall(model, (1, 0)).value == pytest.approx(float(wo1), abs=1e-7)
    assert qk_recall(model, (0, 0), (1, 0)).value == pytest.approx(float(wk1), abs=1e-7)
    assert qk_recall(model, (0, 0), (1, 0), tokens=triggers).value == pytest.approx(float(wk1_fixed), abs=1e-7)
    assert positional_recall(model, (0, 0)).value == pytest.approx(float(wk0), abs=1e-7)
    assert feed_forward_recall(model, exclude=triggers).value == pytest.approx(float(ff1), rel=1e-5)


def test_build_toy_model_conventions():
    """On the lead's toy builder: W_Q = I, d_head = d_model, linear feed-forward = W_in W_out."""
    toy = pytest.importorskip("birthlens.models.toy")
    model = toy.build_toy_model(toy.ToyConfig(d_model=64, n_ctx=32, feed_forward=True), seed=0)
    with torch.no_grad():
        model.blocks[1].attn.W_O.normal_(generator=torch.Generator().manual_seed(0))
        model.blocks[1].mlp.W_out.normal_(generator=torch.Generator().manual_seed(1))
    E, U = model.W_E, model.W_U
    a1 = model.blocks[1].attn
    wo1 = ((E @ a1.W_V[0] @ a1.W_O[0] @ U).argmax(-1) == torch.arange(65)).float().mean()
    assert ov_recall(model, (1, 0)).value == pytest.approx(float(wo1))
    with torch.no_grad():
        logits = E @ model.blocks[1].mlp.W_in @ model.blocks[1].mlp.W_out @ U
    kl = F.kl_div(F.log_softmax(logits, -1), BIGRAM.float(), reduction="batchmean")
    assert feed_forward_recall(model).value == pytest.approx(kl.item(), rel=1e-5)


def test_planted_model_memories():
    model = planted_induction_model()
    assert ov_recall(model, (1, 0)).value == 1.0
    assert qk_recall(model, (0, 0), (1, 0)).value == 1.0
    assert positional_recall(model, (0, 0)).value == 1.0
    table = recall_map(model, "ov")
    assert table[1, 0] == 1.0 and table[0, 0] < 0.2
    assert table.top(1)[0][:2] == (1, 0)


def _tiny(positional="rotary", attn_only=True, d_vocab=1000, **extra):
    cfg = HookedTransformerConfig(
        n_layers=2, n_heads=2, d_model=32, d_head=16, d_vocab=d_vocab, n_ctx=64, attn_only=attn_only,
        positional_embedding_type=positional, normalization_type="RMS", seed=0,
        act_fn=None if attn_only else "gelu", d_mlp=None if attn_only else 64, **extra,
    )  # fmt: skip
    return HookedTransformer(cfg).eval()


def test_probes_that_do_not_apply_say_why():
    rotary = _tiny("rotary")
    pos = positional_recall(rotary, (0, 0))
    assert pos.value is None and not pos.applicable and "rotary" in pos.reason
    assert pos.to_dict()["value"] is None and "not applicable" in str(pos)
    ff = feed_forward_recall(rotary)
    assert ff.value is None and "no feed-forward" in ff.reason
    ff = feed_forward_recall(_tiny("standard", attn_only=False))
    assert ff.value is None and "no bigram table" in ff.reason
    qk = qk_recall(rotary, (1, 0), (1, 1))
    assert qk.value is None and "after the previous-token head" in qk.reason
    assert recall_map(rotary, "positional").values.isnan().all()


def test_large_vocabularies_use_a_seeded_sample():
    model = _tiny("rotary", d_vocab=1000)
    a = token_set(model, n_tokens=100, seed=0)
    assert len(a) == 100 and torch.equal(a, token_set(model, n_tokens=100, seed=0))
    assert not torch.equal(a, token_set(model, n_tokens=100, seed=1))
    recall = ov_recall(model, (1, 1), n_tokens=100)
    assert recall.n == 100 and recall.chance == pytest.approx(1e-3)
    assert ov_recall(model, (1, 1), tokens=[3, 4, 5]).n == 3


def test_bad_input():
    model = planted_induction_model()
    with pytest.raises(BirthlensError, match="out of range"):
        ov_recall(model, (2, 0))
    with pytest.raises(BirthlensError, match="out of range"):
        qk_recall(model, (0, 5), (1, 0))
    with pytest.raises(BirthlensError, match="a head is a"):
        positional_recall(model, 3)
    with pytest.raises(BirthlensError, match="token set"):
        ov_recall(model, (1, 0), tokens=[])
    with pytest.raises(BirthlensError, match="token set"):
        ov_recall(model, (1, 0), tokens=[10_000])
    assert ov_recall(model, (-1, 0)).heads == ((1, 0),)
