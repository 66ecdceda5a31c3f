"""Ablation and path patching on a trained quick toy run: the paper's two-layer circuit, causally."""

import pytest
import torch

import birthlens
from birthlens.models.training import Run
from birthlens.probes.ablation import ablate, ablation_sweep
from birthlens.probes.pairs import task_pair
from birthlens.probes.patching import patch, patching_sweep
from birthlens.probes.path_patching import path_patch

@pytest.fixture(scope="module")
def run(quick_run):
    return quick_run


@pytest.fixture(scope="module")
def model(run):
    return birthlens.load(str(run))


@pytest.fixture(scope="module")
def pair(run, model):
    return task_pair(model, Run(run).read_config().task, batch_size=128, seed=1)


def bigram_only_accuracy(pair) -> float:
    """In-context accuracy of predicting each target from the bigram statistics alone."""
    from birthlens.datasets import default_stats

    best_next = default_stats().bigram_probs().argmax(dim=1)
    guesses = best_next[pair.clean]
    return float((guesses == pair.clean_labels)[pair.answer_mask].float().mean())


@pytest.mark.parametrize("method", ["zero", "mean", "resample"])
def test_without_the_layer1_head_accuracy_falls_to_bigram_level(model, pair, method):
    result = ablate(model, ["1.0"], method=method, pair=pair)
    assert result.baseline > 0.8
    assert result.ablated < bigram_only_accuracy(pair) + 0.05, (result.ablated, bigram_only_accuracy(pair))


def test_without_the_layer0_head_the_induction_head_breaks(model, pair):
    result = ablate(model, ["0.0"], method="mean", pair=pair)
    assert result.ablated < result.baseline - 0.3


def test_the_layer0_head_acts_through_layer1s_keys(model, pair):
    keys = path_patch(model, "0.0", "1.0", receiver_input="k", source="mean", pair=pair)
    queries = path_patch(model, "0.0", "1.0", receiver_input="q", source="mean", pair=pair)
    assert keys.full < keys.baseline - 0.3
    assert keys.fraction > 0.7
    assert abs(queries.fraction) < 0.2


def test_sweeps_rank_the_induction_head_first(model, pair):
    assert ablation_sweep(model, method="mean", pair=pair).top(1)[0][0] == "1.0"
    # The corrupted prompts change what is copied, not where to look: only the head that copies restores it.
    sweep = patching_sweep(model, pair=pair)
    assert sweep.top(1)[0][0] == "1.0" and float(sweep.normalised[1, 0]) > 0.9
    assert patch(model, ["1.0"], pair=pair, direction="noising").normalised < 0.1
    assert torch.isfinite(sweep.normalised).all()
