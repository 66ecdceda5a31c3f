"""Memory recall and attention entropy at every checkpoint of a run, written next to it.

    record_run(Path("runs/quick"))           # -> runs/quick/recall.jsonl, one row per checkpoint
    rows = read_recording(Path("runs/quick"))
    rows[-1]["wo2_recall"], rows[-1]["attn2_entropy"]

The probes run after training, on the saved checkpoints, so the trainer stays as it is;
a run meant for recording saves a checkpoint at every evaluation. Per checkpoint:

- ``wo2_recall``: W_O^2 as an output memory (OV self-recall of head (1, 0));
- ``wk2_recall``: W_K^2 as a key memory (QK recall between heads (0, 0) and (1, 0)) over
  the triggers when they are fixed, as in the paper, else over all tokens;
  ``wk2_recall_all`` always over all tokens;
- ``wk1_recall``: W_K^1 as a positional memory (positional recall of head (0, 0));
- ``attn2_entropy``: entropy of layer-2 attention at in-context positions (second or
  later trigger occurrences), divided by that of uniform attention over the causal
  prefix: 1 = uniform, 0 = one key; ``attn2_entropy_nats`` the raw mean;
- ``attn1_entropy``: the same for layer 1, over every position t >= 1;
- ``prev_token_probe`` and ``induction_probe``: the paper's two attention probes;
- ``ff_kl``: KL of the feed-forward read-out to the bigram table (only with a feed-forward).
Layers are the paper's 1 and 2, i.e. TransformerLens blocks 0 and 1.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from birthlens.datasets import Batch, BigramTask
from birthlens.models import checkpoints as ckpt
from birthlens.models.training import Run
from birthlens.probes.behaviour import induction_probe, prev_token_probe
from birthlens.probes.memory import feed_forward_recall, ov_recall, positional_recall, qk_recall

RECORD_FILE = "recall.jsonl"
PREV_HEAD, INDUCTION_HEAD = (0, 0), (1, 0)
# Far from the trainer's training and evaluation seeds.
PROBE_SEED = 77_777


def attention_entropy(pattern: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(normalised, nats) mean entropy of causal attention rows selected by ``mask``.

        attention_entropy(pattern, batch.icl_mask)   # pattern: (batch, query, key)

    Row t has t + 1 keys, so its uniform entropy is log(t + 1); row 0 (one key, no
    choice) is left out. NaN when no row is selected.
    """
    n = pattern.shape[-1]
    p = pattern.float()
    entropy = -(p * p.clamp_min(1e-30).log()).sum(dim=-1)  # (batch, query)
    uniform = torch.arange(1, n + 1, device=p.device, dtype=torch.float32).log()
    select = mask.to(p.device).clone()
    select[:, 0] = False
    if not select.any():
        return math.nan, math.nan
    ratio = entropy / uniform.clamp_min(1e-12)
    return float(ratio[select].mean()), float(entropy[select].mean())


@torch.inference_mode()
def record_checkpoint(model, batch: Batch, triggers: torch.Tensor | None) -> dict:
    """All recorded values for one model on one probe batch (see the module docstring)."""
    patterns: dict[int, torch.Tensor] = {}

    def keep(layer):
        def hook(pattern, hook):
            patterns[layer] = pattern[:, 0]

        return (f"blocks.{layer}.attn.hook_pattern", hook)

    model.run_with_hooks(batch.inputs, return_type=None, fwd_hooks=[keep(0), keep(1)])
    everywhere = torch.ones_like(batch.icl_mask)
    attn2, attn2_nats = attention_entropy(patterns[1], batch.icl_mask)
    attn1, _ = attention_entropy(patterns[0], everywhere)
    row = {
        "wo2_recall": ov_recall(model, INDUCTION_HEAD).value,
        "wk2_recall": qk_recall(model, PREV_HEAD, INDUCTION_HEAD, tokens=triggers).value,
        "wk2_recall_all": qk_recall(model, PREV_HEAD, INDUCTION_HEAD).value,
        "wk1_recall": positional_recall(model, PREV_HEAD).value,
        "attn2_entropy": attn2,
        "attn2_entropy_nats": attn2_nats,
        "attn1_entropy": attn1,
        "prev_token_probe": prev_token_probe(patterns[0], batch),
        "induction_probe": induction_probe(patterns[1], batch),
    }
    if not model.cfg.attn_only:
        row["ff_kl"] = feed_forward_recall(model, exclude=triggers).value
    # JSON has no NaN.
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}


def record_run(run_dir: Path, device: str = "cpu", batch_size: int = 64) -> bool:
    """Probe every checkpoint of ``run_dir`` not yet in its recall.jsonl; True if any was new."""
    run = Run(run_dir)
    config = run.read_config()
    done = {row["step"] for row in read_recording(run_dir)}
    todo = {step: path for step, path in ckpt.list_checkpoints(run_dir).items() if step not in done}
    if not todo:
        return False
    task = BigramTask(config.task)
    split = "train" if config.task.ood_split else "all"
    batch = task.sample(batch_size, seed=PROBE_SEED, split=split).to(device)
    triggers = task.fixed_trigger_ids.to(device) if config.task.fixed_triggers else None
    rows = read_recording(run_dir)
    for step, path in todo.items():
        model = ckpt.load_checkpoint_model(path, device=device)
        rows.append({"step": step, **record_checkpoint(model, batch, triggers)})
    rows.sort(key=lambda row: row["step"])
    path = Path(run_dir) / RECORD_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    os.replace(tmp, path)
    return True


def read_recording(run_dir: Path) -> list[dict]:
    """The rows of ``recall.jsonl``, sorted by step (empty when not recorded)."""
    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda row: row["step"])
