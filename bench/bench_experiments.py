"""Why sweeps run one torch thread per process: throughput of the quick preset's steps.

    python bench/bench_experiments.py [--steps 30]

Measures training steps per second of the quick preset (d=128, T=64, batch 64) three ways,
in the same run: one process with 1 thread (the baseline), one process with all cores'
threads, and one single-threaded process per core side by side. The ratios against the
baseline say what a sweep gains from processes over threads on this machine.
"""

import argparse
import multiprocessing
import os
import time


def steps_per_second(threads: int, steps: int) -> float:
    import torch

    from birthlens.datasets import BigramTask
    from birthlens.models.toy import build_toy_model
    from birthlens.models.training import make_optimizer, preset, training_loss

    torch.set_num_threads(threads)
    config = preset("quick")
    task = BigramTask(config.task)
    model = build_toy_model(config.model)
    optimizer = make_optimizer(config, model)
    batches = [task.sample(config.batch_size, seed=s) for s in range(steps + 3)]

    def step(batch):
        loss = training_loss(model(batch.inputs), batch, config.loss_on)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for batch in batches[:3]:  # warm-up
        step(batch)
    start = time.perf_counter()
    for batch in batches[3:]:
        step(batch)
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    one = steps_per_second(1, args.steps)
    many = steps_per_second(cores, args.steps)
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        side_by_side = sum(pool.starmap(steps_per_second, [(1, args.steps)] * cores))
    print(f"quick preset, {args.steps} steps each, {cores} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"1 process x 1 thread:            {one:6.2f} steps/s (baseline)")
    print(f"1 process x {cores} threads:           {many:6.2f} steps/s ({many / one:.2f}x)")
    print(f"{cores} processes x 1 thread (total): {side_by_side:6.2f} steps/s ({side_by_side / one:.2f}x)")


if __name__ == "__main__":
    main()
