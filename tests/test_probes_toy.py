"""Probes on a trained quick toy run (the session's `quick_run`)."""

import pytest

from birthlens.probes import (
    attention_scores,
    ov_recall,
    positional_recall,
    probe_all,
    qk_recall,
    repeated_prompts,
    task_metrics,
)
from birthlens.probes.reference import detect_head_scores, spearman


@pytest.fixture(scope="module")
def run_dir(quick_run):
    return quick_run


@pytest.fixture(scope="module")
def toy(run_dir):
    import birthlens

    return birthlens.load(str(run_dir))


@pytest.fixture(scope="module")
def task(run_dir):
    from birthlens.models.training import Run

    return Run(run_dir).read_config().task


def test_agrees_with_detect_head(toy):
    # detect_head wants fewer tokens than the context (64): A A with |A| = 31.
    tokens = repeated_prompts(toy, length=31, batch_size=4, seed=0)
    ours = attention_scores(toy, tokens)
    for name in ("prev_token", "induction"):
        theirs = detect_head_scores(toy, tokens, name)
        assert spearman(ours[name].values, theirs) >= 0.9, name


def test_heads_are_where_the_paper_puts_them(toy):
    # [A A] with A 32 uniform random characters: the quick preset's heads work on any token.
    scores = attention_scores(toy, batch_size=64)
    assert scores.prev_token.top(1)[0][:2] == (0, 0)
    assert scores.induction.top(1)[0][:2] == (1, 0)
    assert scores.prev_token[0, 0] > 0.9
    assert scores.induction[1, 0] > 0.8


def test_memories_are_learned(toy):
    assert ov_recall(toy, (1, 0)).value > 0.9
    assert qk_recall(toy, (0, 0), (1, 0)).value > 0.9  # every token: the triggers are random
    assert positional_recall(toy, (0, 0)).value > 0.9


def test_task_behaviour(toy, task):
    metrics = task_metrics(toy, task=task, batch_size=64, seed=1)
    assert metrics.icl_accuracy > 0.9
    assert metrics.induction_probe > 0.8


def test_probe_all_on_the_run(toy, task):
    result = probe_all(toy, task=task, task_batch_size=32)
    assert result.memory.prev_head == (0, 0) and result.memory.induction_head == (1, 0)
    assert result.task.icl_accuracy > 0.9
