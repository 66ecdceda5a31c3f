"""Attention scores for all of SmolLM2's 270 heads: one batched pass vs TransformerLens's
``detect_head`` called for the three head types on the same prompts; and ``probe_all``.

    .venv/bin/python bench/bench_probes.py [--batch-size 4] [--length 50] [--model smollm2-135m]

Targets (issue 4): attention scores >= 5x faster than detect_head; probe_all < 30 s on a
2-core machine. Both sides run on the same [BOS] A A token prompts in this process,
after one warm-up pass, so only the method differs.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import birthlens
from birthlens.probes import SCORE_NAMES, attention_scores, probe_all, repeated_prompts
from birthlens.probes.reference import detect_head_scores, spearman


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=4, help="prompts (detect_head runs each one, three times)")
    parser.add_argument("--length", type=int, default=50)
    args = parser.parse_args(argv)

    model, load_s = timed(lambda: birthlens.load(args.model))
    heads = model.cfg.n_layers * model.cfg.n_heads
    print(f"{args.model}: {heads} heads, loaded in {load_s:.1f} s, {torch.get_num_threads()} threads")
    tokens = repeated_prompts(model, length=args.length, batch_size=args.batch_size, seed=0)
    model(tokens[:1], return_type=None)  # warm-up, outside both timings

    ours, ours_s = timed(lambda: attention_scores(model, tokens))
    theirs, theirs_s = timed(lambda: {name: detect_head_scores(model, tokens, name) for name in SCORE_NAMES})
    print(f"prompts: {tokens.shape[0]} x {tokens.shape[1]} tokens")
    print(f"birthlens attention_scores (3 scores, one pass): {ours_s:8.2f} s")
    print(f"TransformerLens detect_head x 3 head types:     {theirs_s:8.2f} s")
    print(f"ratio: {theirs_s / ours_s:.1f}x (target >= 5x)")
    for name in SCORE_NAMES:
        print(f"  Spearman({name}) = {spearman(ours[name].values, theirs[name]):.4f}")

    result, suite_s = timed(lambda: probe_all(model, name=args.model))
    print(f"probe_all: {suite_s:.1f} s (target < 30 s): " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
