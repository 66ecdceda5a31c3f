"""Wall time of each stage of `birthlens demo`, against the 10-minute target.

    python bench/bench_demo.py            # the real demo (trains the quick preset, loads SmolLM2)
    python bench/bench_demo.py --quick    # the small demo the tests use

Target (issue 6): the whole demo in under 10 minutes on 2 CPU cores. The baseline
measured in the same run is one forward pass of SmolLM2 on [BOS] A A (8 x 101 tokens),
so each stage also reads as "so many forward passes' worth", which stays comparable
on machines of other speeds, or on this one while other work shares its cores.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

TARGET_S = 600


def forward_time(model) -> float:
    import torch

    from birthlens.probes.prompts import repeated_prompts

    tokens = repeated_prompts(model, length=50, batch_size=8, seed=0)
    times = []
    with torch.inference_mode():
        for _ in range(3):
            start = time.perf_counter()
            model(tokens, return_type=None)
            times.append(time.perf_counter() - start)
    return sorted(times)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small demo of the tests")
    args = parser.parse_args()

    from birthlens.reports.demo import run_demo

    out = Path(tempfile.mkdtemp()) / "demo"
    start = time.perf_counter()
    result = run_demo(out, quick=args.quick, quiet=True)
    total = time.perf_counter() - start

    import birthlens

    baseline = forward_time(birthlens.load("smollm2-135m"))  # cached by now: the demo loaded it
    print(f"birthlens demo{' --quick' if args.quick else ''}: {total:.1f} s in all (target: under {TARGET_S} s)")
    width = max(len(name) for name in result.timings)
    for name, seconds in result.timings.items():
        print(f"  {name:<{width}}  {seconds:7.1f} s  {seconds / baseline:8.1f} SmolLM2 forwards  {100 * seconds / total:5.1f} %")
    print(f"baseline: one SmolLM2 forward on 8 x 101 tokens = {baseline:.2f} s; "
          f"whole demo = {total / baseline:.0f} forwards; ratio to target {total / TARGET_S:.2f}")
    print("summary:")
    for line in result.summary:
        print(f"  {line}")
    shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
