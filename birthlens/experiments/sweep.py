"""Sweeps: a grid of training configs x seeds, run in parallel, restartable, one table.

    specs = grid("k", preset("quick"), {"k": [1, 3]}, seeds=[0, 1], apply=set_k)
    rows = run_sweep(specs, Path("runs/sweep"), workers=2)
    # runs/sweep/<name>/            ordinary run folders (config.json, metrics.jsonl, checkpoints/)
    # runs/sweep/results.{csv,json} one row per run

Each run trains in its own process with one torch thread: on a small CPU machine two
single-threaded runs side by side beat one run on two threads by far (the toy's
matrices are too small to split well, and threads that spin on a busy machine stall).
A run that already finished is skipped; one that was interrupted resumes from its
last checkpoint. So an interrupted sweep is restarted by running it again.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from birthlens.errors import BirthlensError
from birthlens.models import checkpoints as ckpt
from birthlens.models.training import Run, TrainConfig, train

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
TIMING_FILE = "timing.json"


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its folder name, its config, table columns, and whether to
    probe its checkpoints afterwards (``record``: see ``birthlens.experiments.recording``)."""

    name: str
    config: TrainConfig
    tags: dict = field(default_factory=dict, hash=False)
    record: bool = False


def grid(
    prefix: str,
    base: TrainConfig,
    factors: dict[str, Sequence],
    seeds: Iterable[int],
    apply: Callable[[TrainConfig, str, object], TrainConfig],
    record: bool = False,
) -> list[RunSpec]:
    """Every combination of ``factors`` x ``seeds``, as RunSpecs named prefix-f1=v1-...-s<seed>.

        grid("k", base, {"k": [1, 5]}, seeds=[0, 1], apply=lambda c, name, v: with_task(c, k=v))
    """
    combos: list[dict] = [{}]
    for factor, levels in factors.items():
        combos = [{**combo, factor: level} for combo in combos for level in levels]
    specs = []
    for combo in combos:
        for seed in seeds:
            config = replace(base, seed=seed)
            for factor, level in combo.items():
                config = apply(config, factor, level)
            label = "-".join(f"{factor}={level}" for factor, level in combo.items())
            name = "-".join(part for part in (prefix, label, f"s{seed}") if part)
            specs.append(RunSpec(name, config, tags={**combo, "seed": seed}, record=record))
    return specs


def is_finished(run_dir: Path, config: TrainConfig) -> bool:
    """True when ``run_dir`` holds a complete run of ``config`` (final eval and checkpoint)."""
    run = Run(run_dir)
    if not run.exists():
        return False
    rows = run.read_metrics()
    return bool(rows) and rows[-1]["step"] == config.steps and config.steps in ckpt.list_checkpoints(run_dir)


def check_specs(specs: Sequence[RunSpec], root: Path) -> None:
    """Fail fast: duplicate names, bad configs, or a folder that holds a different run."""
    seen: dict[str, TrainConfig] = {}
    for spec in specs:
        if spec.name in seen and seen[spec.name] != spec.config:
            raise BirthlensError(f"two runs of the sweep are named {spec.name!r} with different configs")
        seen[spec.name] = spec.config
        spec.config.check()
        run = Run(Path(root) / spec.name)
        if run.exists() and _comparable(run.read_config()) != _comparable(spec.config):
            raise BirthlensError(f"{run.dir} holds a run with a different config; remove it or choose another --out")


def _comparable(config: TrainConfig) -> dict:
    values = config.to_dict()
    values.pop("steps")  # a run may be extended to more steps
    return values


def run_one(spec: RunSpec, root: Path, device: str = "cpu", threads: int | None = 1) -> dict:
    """Train (or resume, or skip) one run, record it if asked; return its table row."""
    if threads:
        torch.set_num_threads(threads)
    run_dir = Path(root) / spec.name
    timing = _read_timing(run_dir)
    if is_finished(run_dir, spec.config):
        status = "skipped"
    else:
        status = "resumed" if Run(run_dir).exists() else "trained"
        before = timing.get("train_s", 0.0) if status == "resumed" else 0.0
        start = time.perf_counter()
        train(spec.config, run_dir, resume=status == "resumed", device=device, quiet=True)
        timing["train_s"] = before + time.perf_counter() - start
        timing.pop("record_s", None)  # a new training invalidates the recording's timing
        _write_timing(run_dir, timing)
    if spec.record:
        from birthlens.experiments.recording import record_run

        start = time.perf_counter()
        if record_run(run_dir, device=device):
            timing["record_s"] = time.perf_counter() - start
            _write_timing(run_dir, timing)
    return table_row(spec, run_dir, status, timing)


def table_row(spec: RunSpec, run_dir: Path, status: str, timing: dict) -> dict:
    """One results-table row: name, tags, final metrics and first steps to ICL 0.5 / 0.9."""
    from birthlens.experiments.curves import first_step_at_least

    rows = Run(run_dir).read_metrics()
    steps = [r["step"] for r in rows]
    icl = [r.get("icl_accuracy") for r in rows]
    row = {"name": spec.name, "status": status, **spec.tags, "seed": spec.config.seed, "steps": spec.config.steps}
    for key, value in (rows[-1] if rows else {}).items():
        if key != "step":
            row[f"final_{key}"] = value
    row["step_icl_0.5"] = first_step_at_least(steps, icl, 0.5)
    row["step_icl_0.9"] = first_step_at_least(steps, icl, 0.9)
    row["train_s"] = timing.get("train_s")
    row["record_s"] = timing.get("record_s")
    row["run_dir"] = str(run_dir)
    return row


def _read_timing(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / TIMING_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_timing(run_dir: Path, timing: dict) -> None:
    tmp = run_dir / (TIMING_FILE + ".tmp")
    tmp.write_text(json.dumps(timing) + "\n")
    os.replace(tmp, run_dir / TIMING_FILE)


def estimated_cost(config: TrainConfig) -> float:
    """Rough relative cost of a run, to start the longest ones first."""
    m, t = config.model, config.task.seq_len
    width = m.d_model * (m.d_model + t) * (4 if m.variant == "full" else 1)
    return config.steps * config.batch_size * t * width


def run_sweep(
    specs: Sequence[RunSpec],
    root: Path,
    workers: int = 2,
    device: str = "cpu",
    threads: int | None = 1,
    quiet: bool = False,
) -> list[dict]:
    """Run every spec (skipping finished ones) on ``workers`` processes; write the table.

    Returns the table rows in the order of ``specs``. A failing run does not stop the
    others; the sweep raises BirthlensError at the end, naming the runs that failed.
    """
    root = Path(root)
    unique = list({spec.name: spec for spec in specs}.values())
    check_specs(unique, root)
    root.mkdir(parents=True, exist_ok=True)
    order = sorted(unique, key=lambda s: -estimated_cost(s.config))
    rows: dict[str, dict] = {}
    failures: dict[str, str] = {}
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.perf_counter()

    def done(spec: RunSpec, row: dict | None, error: BaseException | None) -> None:
        if error is not None:
            failures[spec.name] = f"{type(error).__name__}: {error}"
            say(f"[{len(rows) + len(failures)}/{len(order)}] {spec.name}: FAILED ({failures[spec.name]})")
            return
        rows[spec.name] = row
        acc = row.get("final_icl_accuracy")
        acc_text = f"icl_acc {acc:.3f}" if isinstance(acc, float) else ""
        say(f"[{len(rows) + len(failures)}/{len(order)}] {spec.name}: {row['status']} {acc_text} "
            f"({time.perf_counter() - started:.0f} s)")

    if workers <= 1:
        previous = torch.get_num_threads()
        try:
            for spec in order:
                try:
                    done(spec, run_one(spec, root, device, threads), None)
                except BirthlensError as exc:
                    done(spec, None, exc)
        finally:
            torch.set_num_threads(previous)
    else:
        # spawn, not fork: a forked child of a process that has used torch's thread
        # pool (or CUDA) can hang.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(run_one, spec, root, device, threads): spec for spec in order}
            try:
                for future in as_completed(futures):
                    error = future.exception()
                    done(futures[future], None if error else future.result(), error)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    table = [rows[spec.name] for spec in unique if spec.name in rows]
    # The table describes the folder: rows of earlier sweeps into it stay while their runs do.
    kept = [r for r in read_table(root) if r.get("name") not in rows and (root / str(r.get("name"))).is_dir()]
    write_table(kept + table, root)
    if failures:
        listed = "; ".join(f"{name}: {why}" for name, why in failures.items())
        raise BirthlensError(f"{len(failures)} of {len(order)} runs failed ({listed}); rerun to retry them")
    return table


def write_table(rows: list[dict], root: Path) -> None:
    """``results.json`` (a list of rows) and ``results.csv`` (the union of their columns)."""
    root = Path(root)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    _atomic_write(root / RESULTS_JSON, json.dumps(rows, indent=1) + "\n")
    tmp = root / (RESULTS_CSV + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    os.replace(tmp, root / RESULTS_CSV)


def read_table(root: Path) -> list[dict]:
    """The rows of ``results.json`` (empty when the sweep has not written one)."""
    path = Path(root) / RESULTS_JSON
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise BirthlensError(f"{path} is not valid JSON ({exc})") from exc


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
