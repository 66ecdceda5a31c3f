"""The bigram-trigger task: distribution, triggers, OOD split, determinism, bad input."""

from pathlib import Path

import pytest
import torch

from birthlens.datasets import BigramTask, CorpusStats, TaskConfig, default_stats, occurrence_counts, repeated_tokens
from birthlens.errors import BirthlensError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def test_shipped_table_matches_the_corpus():
    stats = default_stats()
    assert stats.size == 65
    assert int(stats.unigram.sum()) == 1_115_394
    assert int(stats.bigram.sum()) == 1_115_393
    if CORPUS.is_file():
        rebuilt = CorpusStats.from_text(CORPUS.read_text())
        assert rebuilt.vocab == stats.vocab
        assert torch.equal(rebuilt.bigram, stats.bigram)


def test_fixed_triggers_are_the_k_most_frequent_characters():
    task = BigramTask(TaskConfig(k=5, fixed_triggers=True, seq_len=32))
    batch = task.sample(8, seed=0)
    chars = [task.stats.vocab[int(t)] for t in batch.triggers[0]]
    assert chars == [" ", "e", "t", "o", "a"]
    assert (batch.triggers == batch.triggers[0]).all()
    counts = task.stats.unigram
    assert counts[batch.triggers[0]].min() >= counts.sort(descending=True).values[4]


@pytest.mark.parametrize("fixed", [True, False])
@pytest.mark.parametrize("output_dist", ["uniform", "bigram", "uniform_excluding_trigger"])
def test_trigger_is_always_followed_by_its_output(fixed, output_dist):
    task = BigramTask(TaskConfig(k=3, fixed_triggers=fixed, output_dist=output_dist, seq_len=128))
    batch = task.sample(64, seed=1)
    tokens = batch.tokens
    for k in range(3):
        at_trigger = tokens[:, :-1] == batch.triggers[:, k : k + 1]
        following = tokens[:, 1:][at_trigger]
        expected = batch.outputs[:, k : k + 1].expand_as(at_trigger)[at_trigger]
        assert at_trigger.sum() > 0
        assert torch.equal(following, expected)
    if output_dist == "uniform_excluding_trigger":
        assert (batch.outputs != batch.triggers).all()
    if output_dist == "bigram":
        assert (task.bigram[batch.triggers, batch.outputs] > 0).all()


def test_random_triggers_are_distinct_and_vary_between_sequences():
    task = BigramTask(TaskConfig(k=5, fixed_triggers=False, seq_len=16))
    batch = task.sample(256, seed=2)
    assert all(len(set(row.tolist())) == 5 for row in batch.triggers)
    assert len({tuple(row.tolist()) for row in batch.triggers}) > 200


def test_non_trigger_transitions_follow_the_bigram_table():
    task = BigramTask(TaskConfig(k=5, seq_len=256))
    batch = task.sample(2048, seed=3)
    prev = batch.tokens[:, :-1][batch.bigram_mask]
    nxt = batch.tokens[:, 1:][batch.bigram_mask]
    size = task.vocab_size
    counts = torch.bincount(prev * size + nxt, minlength=size * size).view(size, size).double()
    rows = counts.sum(1)
    frequent = (rows >= 3000).nonzero().flatten()
    assert len(frequent) >= 8
    for token in frequent:
        empirical = counts[token] / rows[token]
        total_variation = 0.5 * (empirical - task.bigram[token]).abs().sum()
        assert total_variation < 0.05, (task.stats.vocab[token], float(total_variation))


def test_ood_split_keeps_train_and_test_outputs_apart():
    task = BigramTask(TaskConfig(k=5, seq_len=32, ood_split=True))
    train_set = set(task.train_outputs.tolist())
    test_set = set(task.test_outputs.tolist())
    assert not train_set & test_set
    assert len(train_set) + len(test_set) == 65 and len(test_set) == 16
    train_outputs = task.sample(512, seed=4, split="train").outputs
    test_outputs = task.sample(512, seed=4, split="test").outputs
    assert set(train_outputs.flatten().tolist()) <= train_set
    assert set(test_outputs.flatten().tolist()) <= test_set
    assert len(set(test_outputs.flatten().tolist())) == 16


def test_occurrence_counter_matches_a_plain_loop():
    task = BigramTask(TaskConfig(k=5, fixed_triggers=False, seq_len=64))
    batch = task.sample(16, seed=5)
    for b in range(16):
        seen = {}
        triggers = set(batch.triggers[b].tolist())
        for t, token in enumerate(batch.tokens[b].tolist()):
            if token in triggers:
                seen[token] = seen.get(token, 0) + 1
                assert batch.occurrence[b, t] == seen[token]
            else:
                assert batch.occurrence[b, t] == 0
    # Second-or-later occurrences have predictable targets, and there are some.
    assert batch.icl_mask.sum() > 0
    assert torch.equal(occurrence_counts(batch.tokens, batch.triggers), batch.occurrence)


def test_same_seed_same_batch_other_seed_other_batch():
    task = BigramTask(TaskConfig(k=5, fixed_triggers=False, seq_len=64))
    first, again, other = task.sample(32, seed=7), task.sample(32, seed=7), task.sample(32, seed=8)
    assert torch.equal(first.tokens, again.tokens) and torch.equal(first.outputs, again.outputs)
    assert not torch.equal(first.tokens, other.tokens)
    assert first.tokens.shape == (32, 65) and first.tokens.dtype == torch.int64


@pytest.mark.parametrize(
    "config",
    [TaskConfig(k=0), TaskConfig(k=66), TaskConfig(output_dist="zipf"), TaskConfig(seq_len=0)],
)
def test_bad_task_configs_raise_clear_errors(config):
    with pytest.raises(BirthlensError):
        BigramTask(config)


def test_repeated_tokens_repeat_exactly():
    tokens = repeated_tokens(4, 10, vocab_size=100, seed=0, bos=7, low=3)
    assert tokens.shape == (4, 21)
    assert (tokens[:, 0] == 7).all()
    assert torch.equal(tokens[:, 1:11], tokens[:, 11:])
    assert tokens[:, 1:].min() >= 3
    with pytest.raises(BirthlensError):
        repeated_tokens(0, 10, vocab_size=100)
