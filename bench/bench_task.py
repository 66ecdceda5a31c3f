"""Throughput of the bigram-trigger generator against a per-token Python loop, same process.

    python bench/bench_task.py
Target (issue 2): >= 5 million tokens/s for K=5, T=256, batch 512 on a 2-core machine.
"""

import random
import time

import torch

from birthlens.datasets import BigramTask, TaskConfig

BATCH, T, K = 512, 256, 5


def per_token_loop(task: BigramTask, batch_size: int, seed: int) -> list[list[int]]:
    """The straightforward generator: one Python step per token of every sequence."""
    rng = random.Random(seed)
    unigram = task.unigram.tolist()
    bigram = task.bigram.tolist()
    vocab = list(range(task.vocab_size))
    triggers = task.fixed_trigger_ids.tolist()
    sequences = []
    for _ in range(batch_size):
        outputs = {q: rng.randrange(task.vocab_size) for q in triggers}
        seq = rng.choices(vocab, weights=unigram)
        for _ in range(task.config.seq_len):
            prev = seq[-1]
            seq.append(outputs[prev] if prev in outputs else rng.choices(vocab, weights=bigram[prev])[0])
        sequences.append(seq)
    return sequences


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    task = BigramTask(TaskConfig(k=K, fixed_triggers=True, seq_len=T))
    tokens = BATCH * (T + 1)
    task.sample(BATCH, seed=0)  # warm-up
    fast = best_of(lambda: task.sample(BATCH, seed=1), repeats=10)
    loop_batch = 32  # the loop is slow; time a smaller batch and scale per token
    slow = best_of(lambda: per_token_loop(task, loop_batch, seed=1), repeats=2) * BATCH / loop_batch
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"vectorised : {tokens / fast / 1e6:6.2f} M tokens/s ({fast * 1e3:.1f} ms per batch of {BATCH} x {T + 1})")
    print(f"python loop: {tokens / slow / 1e6:6.2f} M tokens/s")
    print(f"ratio      : {slow / fast:.1f}x faster than the per-token loop")


if __name__ == "__main__":
    main()
