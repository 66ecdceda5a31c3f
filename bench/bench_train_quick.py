"""Wall time of the quick preset, and when it first reaches 0.95 in-context accuracy.

    python bench/bench_train_quick.py
Target (issue 2): icl_accuracy >= 0.95 at the end of the run, within 3 minutes on 2 cores.
The baseline measured in the same run is one bare training step, so the ratio says how
many steps' worth of time the whole run (evaluations and checkpoints included) costs.
"""

import shutil
import tempfile
import time
from pathlib import Path

from birthlens.datasets import BigramTask
from birthlens.models.toy import build_toy_model
from birthlens.models.training import make_optimizer, preset, train, training_loss


def one_step_time(config) -> float:
    task = BigramTask(config.task)
    model = build_toy_model(config.model)
    optimizer = make_optimizer(config, model)
    times = []
    for step in range(10):
        start = time.perf_counter()
        batch = task.sample(config.batch_size, seed=step)
        loss = training_loss(model(batch.inputs), batch, config.loss_on)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    config = preset("quick")
    step_time = one_step_time(config)
    out = Path(tempfile.mkdtemp()) / "quick"
    start = time.perf_counter()
    rows = train(config, out, quiet=True)
    total = time.perf_counter() - start
    first = next((row for row in rows if row["icl_accuracy"] >= 0.95), None)
    reached = f"step {first['step']}" if first else "never"
    print(f"quick preset: {config.steps} steps in {total:.1f} s; icl_accuracy >= 0.95 first at {reached}")
    if first:
        print(f"time to 0.95 (estimated from steps): {total * first['step'] / config.steps:.1f} s")
    print(f"final row: {rows[-1]}")
    print(f"one bare step: {step_time * 1e3:.1f} ms; whole run = {total / step_time:.0f} bare steps "
          f"(ratio to {config.steps} steps: {total / (step_time * config.steps):.2f})")
    shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
