"""Composition scores: equal to TransformerLens's, and K-composition finds the planted circuit."""

import math

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from birthlens.errors import BirthlensError
from birthlens.probes import composition_scores
from birthlens.probes.planted import planted_induction_model


@pytest.fixture(scope="module")
def gqa_model():
    cfg = HookedTransformerConfig(
        n_layers=3, n_heads=4, n_key_value_heads=2, d_model=48, d_head=8, d_vocab=50, n_ctx=32,
        attn_only=True, positional_embedding_type="rotary", normalization_type="RMS", seed=0,
    )  # fmt: skip
    model = HookedTransformer(cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=gen)
    return model


@pytest.mark.parametrize("mode", ["Q", "K", "V"])
def test_equal_to_transformer_lens(gqa_model, mode):
    ours = composition_scores(gqa_model)[mode]
    theirs = gqa_model.all_composition_scores(mode)
    later = torch.arange(3)[:, None, None, None] < torch.arange(3)[None, None, :, None]
    later = later.expand_as(ours)
    assert torch.allclose(ours[later], theirs[later], atol=1e-5)
    assert ours[~later].isnan().all()


def test_planted_k_composition(gqa_model):
    comp = composition_scores(planted_induction_model())
    l1, h1, l2, h2, score = comp.top(1, "K")[0]
    assert (l1, h1, l2, h2) == (0, 0, 1, 0) and score > 0
    d = comp.to_dict()
    assert d["top"]["K"][0][:4] == [0, 0, 1, 0] and d["shape"] == [2, 2, 2, 2]
    full = composition_scores(gqa_model).to_dict(full=True)
    assert full["K"][0][0][0][0] is None and not math.isnan(full["K"][0][0][1][0])


def test_bad_mode(gqa_model):
    with pytest.raises(BirthlensError, match="composition mode"):
        composition_scores(gqa_model, modes=("X",))
    with pytest.raises(BirthlensError, match="composition mode"):
        composition_scores(gqa_model)["q"]
