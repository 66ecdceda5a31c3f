"""Interventions on SmolLM2-135M (grouped-query attention, rotary, RMSNorm): its induction heads matter."""

import random

import pytest
import torch

from birthlens.probes.ablation import ablate, ablation_sweep
from birthlens.probes.attention import attention_scores
from birthlens.probes.pairs import repeated_pair
from birthlens.probes.patching import patch
from birthlens.probes.path_patching import path_patch


@pytest.fixture(scope="module")
def scores(smollm2):
    return attention_scores(smollm2, length=20, batch_size=4, seed=0)


def induction_heads_and_controls(model, scores, n=3, seed=0):
    """The n strongest induction heads, and n other heads drawn at random from their layers."""
    top = [(layer, head) for layer, head, _ in scores.induction.top(n)]
    pool = [(layer, h) for layer in sorted({layer for layer, _ in top}) for h in range(model.cfg.n_heads) if (layer, h) not in top]
    return top, random.Random(seed).sample(pool, n)


def test_strongest_induction_heads_matter_far_more_than_random_heads(smollm2, scores):
    top, controls = induction_heads_and_controls(smollm2, scores)
    pair = repeated_pair(smollm2, length=20, batch_size=4, seed=1)
    strong = ablate(smollm2, top, method="mean", metric="second_copy_loss", pair=pair)
    weak = ablate(smollm2, controls, method="mean", metric="second_copy_loss", pair=pair)
    print(f"\nsecond-copy loss {strong.baseline:.3f}: induction heads {top} ablated {strong.ablated:.3f}, random {controls} {weak.ablated:.3f}")
    assert strong.delta > 1.0
    assert strong.delta > 3 * max(weak.delta, 0.1)


def test_patching_and_path_patching_on_grouped_query_attention(smollm2, scores):
    pair = repeated_pair(smollm2, length=12, batch_size=2, seed=2)
    whole_input = patch(smollm2, ["resid.0"], pair=pair)
    assert whole_input.patched == whole_input.clean and whole_input.normalised == 1.0
    layer, head, _ = scores.induction.top(1)[0]
    sender = max(((l, h) for l in range(layer) for h in range(9)), key=lambda lh: scores.prev_token[lh])
    result = path_patch(smollm2, [sender], [(layer, head)], receiver_input="k", source="mean", pair=pair)
    assert all(map(torch.isfinite, torch.tensor([result.baseline, result.full, result.path])))
    assert not smollm2.cfg.use_split_qkv_input and not smollm2.cfg.ungroup_grouped_query_attention


@pytest.mark.slow
def test_induction_heads_at_full_size_against_several_random_draws(smollm2):
    pair = repeated_pair(smollm2, length=50, batch_size=8, seed=1)
    full_size = attention_scores(smollm2, length=50, batch_size=8, seed=0)
    top, _ = induction_heads_and_controls(smollm2, full_size)
    strong = ablate(smollm2, top, method="mean", metric="second_copy_loss", pair=pair)
    for seed in range(3):
        _, controls = induction_heads_and_controls(smollm2, full_size, seed=seed)
        weak = ablate(smollm2, controls, method="mean", metric="second_copy_loss", pair=pair)
        print(f"\ninduction heads {top}: +{strong.delta:.3f}; random {controls}: +{weak.delta:.3f}")
        assert strong.delta > 2 * max(weak.delta, 0.1)


@pytest.mark.slow
def test_batched_sweep_matches_head_by_head_ablation(smollm2):
    pair = repeated_pair(smollm2, length=20, batch_size=4, seed=0)
    sweep = ablation_sweep(smollm2, method="mean", metric="second_copy_loss", pair=pair, layers=[17])
    assert torch.isnan(sweep.ablated[16]).all() and not torch.isnan(sweep.ablated[17]).any()
    for head in (0, 4, 8):
        single = ablate(smollm2, [(17, head)], method="mean", metric="second_copy_loss", pair=pair)
        assert float(sweep.ablated[17, head]) == pytest.approx(single.ablated, abs=1e-3)
