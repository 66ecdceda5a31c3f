"""The birth of the induction head: probe every saved checkpoint of a training run.

    birth = probe_run(Path("runs/quick"))          # one probe per checkpoint, progress bar
    birth.crossings()                              # {"ov": 80, "qk": 120, ...}: half-way steps
    birth.to_dict()                                # JSON-ready, what the report draws

Losses and in-context accuracy come from the run's own ``metrics.jsonl`` (evaluated
more often than checkpoints are saved). Memory recall of W_O^2, W_K^2 and W_K^1 and
the paper's two attention probes are measured here, on each checkpoint, always on the
same pair of heads: the previous-token head P and induction head I that the FINAL
checkpoint picks (on the simplified toy, layer 0 and layer 1), so a curve follows one
matrix through training rather than whichever head happens to lead at each step.

"Half-way" is the step at which a curve first covers half the distance from its first
value to its final one (interpolated between the two measurements around it). For
curves that start near zero (recall, accuracy, attention probes) that is the step
where it reaches half its final value.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from birthlens.errors import BirthlensError

# Below this change from first to final value a curve has no "birth" to mark.
MIN_CHANGE = 0.05

# key -> (legend label, where it comes from)
LABELS = {
    "loss": "training loss (in-context targets)",
    "icl_loss": "in-context loss",
    "bigram_loss": "bigram loss (non-trigger targets)",
    "icl_accuracy": "in-context accuracy",
    "ood_icl_accuracy": "in-context accuracy, unseen outputs (OOD)",
    "ov": "W_O² output memory (OV recall of I)",
    "qk": "W_K² key memory (QK recall P→I)",
    "positional": "W_K¹ positional memory (of P)",
    "prev_token_probe": "layer-1 attention: previous token (P)",
    "induction_probe": "layer-2 attention: induction (I)",
}
METRIC_KEYS = ("loss", "icl_loss", "bigram_loss", "icl_accuracy", "ood_icl_accuracy")
CHECKPOINT_KEYS = ("ov", "qk", "positional", "prev_token_probe", "induction_probe")
# The paper's claim 2: memories form top-down, W_O^2 first, then W_K^2, then W_K^1.
PAPER_ORDER = ("ov", "qk", "positional")


def half_way_step(steps, values, min_change: float = MIN_CHANGE) -> float | None:
    """Step at which ``values`` first covers half the way from its first to its last value,
    linearly interpolated between the two measurements around the crossing.

    >>> half_way_step([0, 10, 20, 30], [0.0, 0.1, 0.6, 0.8])
    16.0
    >>> half_way_step([0, 10, 20], [4.0, 2.0, 1.0])   # falling curves work the same way
    10.0
    """
    pairs = [(s, v) for s, v in zip(steps, values) if v is not None and math.isfinite(v)]
    if len(pairs) < 2:
        return None
    first, final = pairs[0][1], pairs[-1][1]
    if abs(final - first) < min_change * max(abs(first), abs(final), 1e-12) or abs(final - first) < 1e-6:
        return None
    target = first + (final - first) / 2
    sign = 1.0 if final > first else -1.0
    for (s0, v0), (s1, v1) in zip(pairs, pairs[1:]):
        if (v1 - target) * sign >= 0:
            # Checkpoints are coarse: interpolate rather than report the later one.
            fraction = (target - v0) / (v1 - v0) if v1 != v0 else 1.0
            return float(s0 + min(max(fraction, 0.0), 1.0) * (s1 - s0))
    return None  # unreachable: the final value is always past the target


@dataclass
class Birth:
    """A run's curves over training, ready to draw."""

    name: str
    config: dict
    prev_head: tuple[int, int]
    induction_head: tuple[int, int]
    metrics: list[dict]  # rows of metrics.jsonl
    checkpoints: list[dict]  # one row per probed checkpoint: step + CHECKPOINT_KEYS
    probes: dict[int, dict] = field(default_factory=dict)  # step -> probe_all(...).to_dict()
    # The final checkpoint's live ProbeSuiteResult (not saved): lets a report reuse it.
    final_result: object = field(default=None, repr=False, compare=False)

    def series(self) -> dict[str, tuple[list[int], list[float | None]]]:
        """key -> (steps, values) for every curve that has at least one value."""
        out = {}
        for keys, rows in ((METRIC_KEYS, self.metrics), (CHECKPOINT_KEYS, self.checkpoints)):
            for key in keys:
                points = [(row["step"], row.get(key)) for row in rows if key in row]
                if any(v is not None for _, v in points):
                    out[key] = ([s for s, _ in points], [v for _, v in points])
        if "loss" in out and out["loss"] == out.get("icl_loss"):
            del out["loss"]  # trained on in-context targets only: the same curve twice
        return out

    def crossings(self) -> dict[str, float | None]:
        return {key: half_way_step(steps, values) for key, (steps, values) in self.series().items()}

    def finals(self) -> dict[str, float | None]:
        return {key: values[-1] for key, (_, values) in self.series().items()}

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "config": self.config,
            "prev_head": list(self.prev_head),
            "induction_head": list(self.induction_head),
            "metrics": self.metrics,
            "checkpoints": self.checkpoints,
            "probes": {str(step): probe for step, probe in self.probes.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Birth":
        return cls(
            name=data["name"],
            config=data.get("config", {}),
            prev_head=tuple(data["prev_head"]),
            induction_head=tuple(data["induction_head"]),
            metrics=data.get("metrics", []),
            checkpoints=data.get("checkpoints", []),
            probes={int(step): probe for step, probe in data.get("probes", {}).items()},
        )


def _nan_to_none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def checkpoint_row(step: int, result) -> dict:
    """The numbers the birth figure needs from one checkpoint's probe result."""
    memory, task = result.memory, result.task
    return {
        "step": step,
        "ov": memory.ov.value,
        "qk": memory.qk.value,
        "positional": memory.positional.value,
        "prev_token_probe": _nan_to_none(task.prev_token_probe) if task else None,
        "induction_probe": _nan_to_none(task.induction_probe) if task else None,
        "icl_accuracy_probe": _nan_to_none(task.icl_accuracy) if task else None,
    }


def pick_steps(steps: list[int], max_checkpoints: int | None) -> list[int]:
    """At most ``max_checkpoints`` steps, evenly spread, always keeping the first and last."""
    if max_checkpoints is None or len(steps) <= max_checkpoints:
        return steps
    if max_checkpoints < 2:
        return [steps[-1]]
    picks = {steps[round(i * (len(steps) - 1) / (max_checkpoints - 1))] for i in range(max_checkpoints)}
    return sorted(picks)


def probe_run(
    run_dir: Path,
    *,
    max_checkpoints: int | None = None,
    device: str = "cpu",
    quiet: bool = False,
    name: str | None = None,
    batch_size: int = 8,
    task_batch_size: int = 64,
) -> Birth:
    """Probe the checkpoints of a training run (all of them, or ``max_checkpoints`` spread out).

        birth = probe_run(Path("runs/quick"), max_checkpoints=6, quiet=True)
        birth.probes[400]["top"]["induction"]      # the full probe result of step 400
    """
    from tqdm.auto import tqdm

    from birthlens.models.checkpoints import list_checkpoints, load_checkpoint_model
    from birthlens.models.training import Run
    from birthlens.probes.suite import probe_all, strongest_pair

    run_dir = Path(run_dir)
    run = Run(run_dir)
    if not run.exists():
        raise BirthlensError(f"{run_dir} is not a training run (no {run.config_path.name})")
    config = run.read_config()
    available = list_checkpoints(run_dir)
    if not available:
        raise BirthlensError(f"{run_dir} holds no checkpoints, so there is no training to show")
    steps = pick_steps(list(available), max_checkpoints)
    name = name or run_dir.name

    def probe(step: int, prev_head=None, induction_head=None):
        model = load_checkpoint_model(available[step], device=device)
        return probe_all(
            model, name=f"{name}@{step}", prev_head=prev_head, induction_head=induction_head,
            task=config.task, batch_size=batch_size, task_batch_size=task_batch_size,
            composition=step == steps[-1],
        )  # fmt: skip

    # The final checkpoint chooses the heads every earlier checkpoint is read on.
    final = probe(steps[-1])
    pair = strongest_pair(final.attention)
    prev_head = final.memory.prev_head or pair[0] or (0, 0)
    induction_head = final.memory.induction_head
    results = {}
    disable = quiet or not sys.stderr.isatty()
    for step in tqdm(steps[:-1], desc="probe checkpoints", unit="ckpt", disable=disable):
        results[step] = probe(step, prev_head, induction_head)
    results[steps[-1]] = final
    return Birth(
        name=name,
        config=config.to_dict(),
        prev_head=tuple(prev_head),
        induction_head=tuple(induction_head),
        metrics=run.read_metrics(),
        checkpoints=[checkpoint_row(step, results[step]) for step in steps],
        probes={step: results[step].to_dict() for step in steps},
        final_result=final,
    )
