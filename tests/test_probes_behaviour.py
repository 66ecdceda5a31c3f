"""Behaviour probes: induction loss, task metrics, the paper's attention probes."""

import math

import pytest
import torch
import torch.nn.functional as F

from birthlens.datasets.bigram_task import BigramTask, TaskConfig
from birthlens.errors import BirthlensError
from birthlens.probes import (
    bigram_loss,
    copy_losses,
    icl_accuracy,
    icl_loss,
    induction_loss,
    induction_probe,
    per_token_loss,
    prev_token_probe,
    repeated_prompts,
    second_copy_loss,
    task_metrics,
)
from birthlens.probes.planted import planted_induction_model


@pytest.fixture(scope="module")
def planted():
    return planted_induction_model(d_vocab=65, n_ctx=128)


@pytest.fixture(scope="module")
def batch():
    return BigramTask(TaskConfig(k=5, seq_len=64)).sample(16, seed=0)


def test_copy_losses_select_the_right_positions():
    # Loss i predicts token i + 1: make the loss equal to the target's position.
    length, bos = 4, 1
    tokens = torch.zeros(1, bos + 2 * length, dtype=torch.long)
    n = tokens.shape[1]
    logits = torch.zeros(1, n, 3)
    losses = torch.arange(1, n, dtype=torch.float32)  # what we want per_token_loss to return
    # Build logits whose loss at i is losses[i]: logit of class 0 = -loss, others -inf-ish.
    logits[0, :-1, 0] = 0.0
    logits[0, :-1, 1:] = torch.log(torch.expm1(losses))[:, None] - math.log(2)
    assert torch.allclose(per_token_loss(logits, tokens)[0], losses, atol=1e-4)
    first, second = copy_losses(logits, tokens, length)
    # First copy A[1:] sits at token positions 2..4, the second copy's at 6..8.
    assert first.item() == pytest.approx(sum([2, 3, 4]) / 3, abs=1e-3)
    assert second.item() == pytest.approx(sum([6, 7, 8]) / 3, abs=1e-3)
    assert second_copy_loss(logits, tokens, length).shape == (1,)


def test_planted_model_copies_second_half():
    # A large vocabulary keeps repeats inside A (which make copying ambiguous) rare.
    model = planted_induction_model(d_vocab=500, n_ctx=64)
    loss = induction_loss(model, length=30, batch_size=8)
    assert loss.first_half > math.log(500)  # nothing to copy yet: confidently wrong
    assert loss.second_half < 0.5 and loss.gain > 10
    assert loss.per_position.shape == (59,)
    assert not loss.bos and loss.length == 30
    d = loss.to_dict()
    assert d["first_half"] == loss.first_half and len(d["per_position"]) == 59


def test_induction_loss_accepts_given_tokens_and_checks_them(planted):
    tokens = repeated_prompts(planted, length=10, batch_size=2, bos=3)
    assert induction_loss(planted, tokens).bos
    with pytest.raises(BirthlensError, match="not \\[BOS\\] A A"):
        induction_loss(planted, torch.arange(20).view(1, 20))
    with pytest.raises(BirthlensError, match="not \\[BOS\\] A A"):
        induction_loss(planted, tokens, length=7)


def test_task_metrics_on_logits(batch):
    targets = batch.targets
    perfect = F.one_hot(targets, 65).float() * 50
    assert icl_accuracy(perfect, batch) == 1.0
    assert icl_loss(perfect, batch) < 1e-6
    assert bigram_loss(perfect, batch) < 1e-6
    uniform = torch.zeros(*targets.shape, 65)
    assert icl_loss(uniform, batch) == pytest.approx(math.log(65), rel=1e-5)
    per_seq = icl_accuracy(perfect, batch, per_sequence=True)
    assert per_seq.shape == (16,)
    has_icl = batch.icl_mask.any(dim=1)
    assert torch.all(per_seq[has_icl] == 1.0) and torch.all(per_seq[~has_icl].isnan())


def test_paper_attention_probes_on_hand_made_patterns(batch):
    inputs = batch.inputs
    b, t = inputs.shape
    # A perfect previous-token pattern and a perfect induction pattern.
    prev = torch.zeros(b, t, t)
    prev[:, 0, 0] = 1
    prev[:, torch.arange(1, t), torch.arange(t - 1)] = 1
    assert prev_token_probe(prev, batch) == 1.0
    ind = torch.zeros(b, t, t)
    for i in range(b):
        for q in range(t):
            earlier = [s + 1 for s in range(q) if inputs[i, s] == inputs[i, q]]
            ind[i, q, earlier[-1] if earlier else 0] = 1
    assert induction_probe(ind, batch) == 1.0
    assert induction_probe(prev, batch) < 0.5  # looking at the previous token is not induction


def test_task_metrics_on_a_model(planted):
    metrics = task_metrics(planted, task=TaskConfig(k=5, seq_len=64), batch_size=8)
    # The planted heads do exactly the paper's mechanism, so in-context targets are copied.
    assert metrics.icl_accuracy > 0.95
    assert metrics.prev_token_probe > 0.95 and metrics.induction_probe > 0.95
    d = metrics.to_dict()
    assert d["task"]["k"] == 5 and d["prev_head"] == [0, 0] and d["n_sequences"] == 8


def test_task_metrics_bad_input(planted, batch):
    with pytest.raises(BirthlensError, match="out of range"):
        task_metrics(planted, batch, induction_head=(2, 0))
    with pytest.raises(BirthlensError, match="longer than the model's context"):
        task_metrics(planted, BigramTask(TaskConfig(seq_len=200)).sample(2))
