"""Run named experiments end to end: one sweep for all their runs, then the claims table.

    claims = run_experiments(["all"], scale="small", out=Path("runs/experiments"), workers=2)

Layout of ``out``:

    out/runs/<run>/            ordinary run folders (+ recall.jsonl where memories are probed)
    out/runs/results.{csv,json} one row per run (the sweep's table)
    out/claims.json            the claims table (see ``birthlens.experiments.claims``)

Running again skips finished runs and re-derives the claims from the run folders, so an
interrupted ``all`` is resumed by repeating the command.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from birthlens.errors import BirthlensError
from birthlens.experiments.catalog import EXPERIMENTS
from birthlens.experiments.claims import CLAIMS_FILE, Claim, write_claims
from birthlens.experiments.scales import get_scale
from birthlens.experiments.sweep import run_sweep

RUNS_DIR = "runs"


def expand(names: Sequence[str]) -> list[str]:
    """Experiment names in catalogue order, with "all" meaning every experiment."""
    unknown = [n for n in names if n != "all" and n not in EXPERIMENTS]
    if unknown:
        raise BirthlensError(f"unknown experiment {unknown[0]!r}; choose all or one of {', '.join(EXPERIMENTS)}")
    if "all" in names:
        return list(EXPERIMENTS)
    return [n for n in EXPERIMENTS if n in names]


def run_experiments(
    names: Sequence[str],
    scale: str = "small",
    out: Path = Path("runs/experiments"),
    seeds: int | None = None,
    workers: int = 2,
    device: str = "cpu",
    threads: int | None = 1,
    quiet: bool = False,
) -> list[Claim]:
    """Train what the experiments need (in parallel, skipping finished runs), then measure
    each claim and merge the rows into ``out/claims.json``. Returns every claim in the file."""
    chosen = expand(names)
    spec = get_scale(scale)
    n_seeds = spec.default_seeds if seeds is None else seeds
    if n_seeds < 1:
        raise BirthlensError(f"--seeds {n_seeds}: need at least one seed")
    seed_list = list(range(n_seeds))
    out = Path(out)
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    runs = [run for name in chosen for run in EXPERIMENTS[name].specs(spec, seed_list)]
    rows = run_sweep(runs, out / RUNS_DIR, workers=workers, device=device, threads=threads, quiet=quiet) if runs else []
    claims = []
    if threads:
        torch.set_num_threads(threads)
    for name in chosen:
        if not quiet:
            print(f"measuring {name}: {EXPERIMENTS[name].summary}", file=sys.stderr, flush=True)
        claims += EXPERIMENTS[name].analyse(out / RUNS_DIR, spec, seed_list, device=device)
    invocation = {
        "started": started_at,
        "experiments": chosen,
        "wall_s": round(time.perf_counter() - started, 1),
        "trained": sum(r["status"] in ("trained", "resumed") for r in rows),
        "skipped": sum(r["status"] == "skipped" for r in rows),
        "workers": workers,
        "device": str(device),
    }
    return write_claims(out / CLAIMS_FILE, claims, invocation=invocation, scale=scale, seeds=n_seeds)
