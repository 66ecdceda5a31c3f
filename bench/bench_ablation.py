"""All-heads mean-ablation sweep on SmolLM2 (270 heads) over 8 repeated sequences of 2 x 50 tokens.

    .venv/bin/python bench/bench_ablation.py            # the sweep, against one plain forward pass
    .venv/bin/python bench/bench_ablation.py --loop     # also the naive per-head loop on one layer

Prints the sweep's wall time and, measured in the same run, the time of one plain forward
pass over the same batch: their ratio says what the sweep costs in forward passes, which
holds whatever else the machine is doing. A naive sweep costs 270 full passes; starting
each pass at the ablated layer brings it to about 140, and stacking heads in one pass
makes each of those cheaper. ``--loop`` times ``ablate`` head by head on layer 15 (the
middle) for a loop-vs-batched ratio on the same heads.
"""

from __future__ import annotations

import argparse
import time

import torch

import birthlens
from birthlens.probes.ablation import ablate, ablation_sweep
from birthlens.probes.pairs import repeated_pair


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", action="store_true", help="also time a per-head loop on one layer")
    parser.add_argument("--copies", type=int, default=None, help="heads per forward pass (default: by memory)")
    args = parser.parse_args(argv)

    model = birthlens.load("smollm2-135m")
    pair = repeated_pair(model, length=50, batch_size=8, seed=0)
    with torch.inference_mode():
        model(pair.clean)  # warm-up
        start = time.perf_counter()
        model(pair.clean)
        forward = time.perf_counter() - start

    start = time.perf_counter()
    sweep = ablation_sweep(model, method="mean", metric="second_copy_loss", pair=pair, copies=args.copies)
    elapsed = time.perf_counter() - start

    print(f"one forward pass, 8 x {pair.seq_len} tokens:       {forward:7.2f} s")
    print(f"all-heads mean-ablation sweep ({sweep.ablated.numel()} heads): {elapsed:7.2f} s  (limit 180 s)")
    print(f"sweep / forward: {elapsed / forward:.0f} forward passes' worth (a naive sweep: {sweep.ablated.numel()})")
    print(f"baseline second-copy loss {sweep.baseline:.3f}; most harmful: " + ", ".join(f"{name} ({delta:+.2f})" for name, _, delta in sweep.top(5)))

    if args.loop:
        layer = model.cfg.n_layers // 2
        start = time.perf_counter()
        for head in range(model.cfg.n_heads):
            ablate(model, [(layer, head)], method="mean", metric="second_copy_loss", pair=pair)
        loop = time.perf_counter() - start
        start = time.perf_counter()
        ablation_sweep(model, method="mean", metric="second_copy_loss", pair=pair, layers=[layer], copies=args.copies)
        batched = time.perf_counter() - start
        print(f"layer {layer}'s {model.cfg.n_heads} heads: per-head loop of ablate {loop:.2f} s, batched sweep {batched:.2f} s ({loop / batched:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
