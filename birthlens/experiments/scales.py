"""The two sizes the experiments run at: ``small`` (a 2-core CPU, minutes) and ``paper``.

    scale = get_scale("small")
    scale.base            # the simplified model's TrainConfig at this size
    scale.full_config()   # the full model (layer norm, MLPs, all trained, Adam) at this size

``small`` has the ``quick`` preset's sizes (d = 128, T = 64, batch 64, AdamW) on the
paper's main task, 5 fixed triggers, with lr 1e-2 for 400 steps: the induction head
forms on a CPU in a minute or two. (The quick preset itself draws 30 random triggers
per sequence so that its heads work on any token.) ``paper`` is the
``paper`` preset (d = 256, T = 256, batch 512, SGD with momentum), for a GPU. Nothing in
a scale was chosen by looking at whether a claim came out true.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from birthlens.datasets.bigram_task import TaskConfig
from birthlens.errors import BirthlensError
from birthlens.models.toy import ToyConfig
from birthlens.models.training import TrainConfig, preset

SCALE_NAMES = ("small", "paper")

# The claims are measured on the paper's main task.
SMALL_TASK = TaskConfig(k=5, fixed_triggers=True, seq_len=64)


@dataclass(frozen=True)
class Scale:
    """Sizes and intervals of one scale (see the module docstring)."""

    name: str
    base: TrainConfig
    full_model: ToyConfig
    # The full model trains everything with Adam, as in the paper's full-model runs.
    full_training: dict = field(default_factory=lambda: {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0}, hash=False)
    record_every: int = 10  # evaluation and checkpoint interval of runs whose memories are probed
    eval_every: int = 20  # evaluation interval of the other runs
    freeze_steps: int = 100  # claim 2b: how long a matrix stays frozen
    trigger_counts: tuple[int, ...] = (1, 3, 5, 10)
    default_seeds: int = 3

    def full_config(self) -> TrainConfig:
        return replace(self.base, model=self.full_model, **self.full_training)


SCALES: dict[str, Scale] = {
    "small": Scale(
        name="small",
        base=replace(preset("quick"), task=SMALL_TASK, lr=1e-2, steps=400, preset="experiment-small"),
        full_model=ToyConfig(variant="full", d_model=128, n_ctx=64, n_layers=2, n_heads=1, d_mlp=512),
        record_every=10,
        eval_every=20,
        freeze_steps=100,
    ),
    "paper": Scale(
        name="paper",
        base=replace(preset("paper"), preset="experiment-paper"),
        full_model=ToyConfig(variant="full", d_model=256, n_ctx=256, n_layers=2, n_heads=1, d_mlp=1024),
        record_every=100,
        eval_every=100,
        freeze_steps=2500,
    ),
}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise BirthlensError(f"unknown scale {name!r}; choose one of {', '.join(SCALE_NAMES)}")
    return SCALES[name]
