"""Toy model and trainer: freezing, learning, checkpoints, resume, interrupts."""

import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from birthlens.datasets import TaskConfig
from birthlens.errors import BirthlensError
from birthlens.models import checkpoints as ckpt
from birthlens.models.toy import ToyConfig, build_toy_model, frozen_parameters, trainable_parameters
from birthlens.models.training import Run, preset, train

# A small version of the quick preset: seconds, not minutes.
SMALL = dict(
    task=TaskConfig(k=5, seq_len=32),
    model=ToyConfig(d_model=64, n_ctx=32),
    steps=40,
    eval_every=10,
    checkpoint_every=20,
    batch_size=32,
    eval_batch_size=64,
)


def test_simplified_model_has_the_papers_structure():
    model = build_toy_model(ToyConfig(d_model=64, n_ctx=32), seed=0)
    assert set(trainable_parameters(model)) == {"blocks.0.attn.W_K", "blocks.1.attn.W_K", "blocks.1.attn.W_O"}
    assert model.cfg.n_layers == 2 and model.cfg.n_heads == 1 and model.cfg.normalization_type is None
    for block in model.blocks:
        assert torch.equal(block.attn.W_Q[0], torch.eye(64))
    # Random embeddings of norm about 1; learned matrices start at zero.
    assert 0.8 < model.embed.W_E.norm(dim=1).mean() < 1.2
    assert model.blocks[1].attn.W_O.abs().sum() == 0
    again = build_toy_model(ToyConfig(d_model=64, n_ctx=32), seed=0)
    assert torch.equal(model.embed.W_E, again.embed.W_E)


def test_feed_forward_variant_learns_only_its_output_matrix():
    model = build_toy_model(ToyConfig(d_model=32, n_ctx=16, feed_forward=True), seed=0)
    assert "blocks.1.mlp.W_out" in trainable_parameters(model)
    assert torch.equal(model.blocks[1].mlp.W_in, torch.eye(32))
    assert model.blocks[0].mlp.W_in.abs().sum() == 0  # layer 0 has no feed-forward in effect


def test_training_changes_only_the_learned_matrices(tmp_path):
    config = preset("quick", **SMALL)
    before = {name: p.clone() for name, p in frozen_parameters(build_toy_model(config.model, seed=0)).items()}
    train(config, tmp_path / "run", quiet=True)
    model = ckpt.load_checkpoint_model(ckpt.find_checkpoint(tmp_path / "run"))
    for name, param in frozen_parameters(model).items():
        assert torch.equal(param, before[name]), name
    assert all(p.abs().sum() > 0 for p in trainable_parameters(model).values())


def test_quick_training_rises_clearly_above_chance(tmp_path):
    rows = train(preset("quick", steps=120, eval_every=40, checkpoint_every=120), tmp_path / "run", quiet=True)
    assert [row["step"] for row in rows] == [0, 40, 80, 120]
    first, last = rows[0], rows[-1]
    assert first["icl_accuracy"] < 0.1  # untrained: about 1/65
    assert last["icl_accuracy"] > 0.4
    assert last["loss"] < first["loss"] - 1.0
    assert {"loss", "icl_accuracy", "bigram_loss"} <= set(last)


def test_ood_runs_log_ood_accuracy(tmp_path):
    config = preset("quick", **SMALL)
    config = replace(config, task=replace(config.task, ood_split=True))
    rows = train(config, tmp_path / "run", quiet=True)
    assert all(0 <= row["ood_icl_accuracy"] <= 1 for row in rows)


def test_same_seed_gives_the_same_run(tmp_path):
    config = preset("quick", **SMALL)
    config = replace(config, steps=20)
    first = train(config, tmp_path / "a", quiet=True)
    assert train(config, tmp_path / "b", quiet=True) == first
    assert train(replace(config, seed=1), tmp_path / "c", quiet=True) != first


def test_checkpoint_round_trip_gives_bit_identical_logits(tmp_path):
    model = build_toy_model(ToyConfig(d_model=64, n_ctx=32), seed=3)
    with torch.no_grad():
        model.blocks[1].attn.W_O.normal_()
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, model, ToyConfig(d_model=64, n_ctx=32), step=7)
    loaded = ckpt.load_checkpoint_model(path)
    tokens = torch.randint(0, 65, (4, 32))
    assert torch.equal(model(tokens), loaded(tokens))
    assert loaded.birthlens_checkpoint["step"] == 7


def test_resume_continues_exactly(tmp_path):
    config = preset("quick", **SMALL)
    straight = train(config, tmp_path / "straight", quiet=True)
    train(replace(config, steps=20), tmp_path / "split", quiet=True)
    resumed = train(config, tmp_path / "split", resume=True, quiet=True)
    assert resumed == straight
    a = ckpt.load_checkpoint_model(ckpt.find_checkpoint(tmp_path / "straight"))
    b = ckpt.load_checkpoint_model(ckpt.find_checkpoint(tmp_path / "split"))
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), name


def test_resume_refuses_a_different_config(tmp_path):
    config = preset("quick", **SMALL)
    train(replace(config, steps=20), tmp_path / "run", quiet=True)
    with pytest.raises(BirthlensError, match="different config"):
        train(replace(config, lr=0.5), tmp_path / "run", resume=True, quiet=True)
    with pytest.raises(BirthlensError, match="--resume"):
        train(config, tmp_path / "run", quiet=True)


def test_corrupt_or_missing_checkpoints_give_clear_errors(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, build_toy_model(ToyConfig(d_model=16, n_ctx=8), seed=0), ToyConfig(d_model=16, n_ctx=8), step=0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BirthlensError, match="not a readable"):
        ckpt.load_checkpoint_model(path)
    path.write_bytes(b"garbage")
    with pytest.raises(BirthlensError):
        ckpt.load_checkpoint_model(path)
    with pytest.raises(BirthlensError, match="not found"):
        ckpt.load_checkpoint_model(tmp_path / "missing.safetensors")
    with pytest.raises(BirthlensError, match="no checkpoints"):
        ckpt.find_checkpoint(tmp_path)


def test_a_failed_write_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    model = build_toy_model(ToyConfig(d_model=16, n_ctx=8), seed=0)

    def interrupted(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path / "step_00000001.safetensors", model, ToyConfig(d_model=16, n_ctx=8), step=1)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_leaves_loadable_checkpoints(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "birthlens.cli", "train", "--out", str(out), "--steps", "100000",
               "--checkpoint-every", "5", "--eval-every", "5", "--quiet", "--seq-len", "32", "--n-ctx", "32",
               "--d-model", "64", "--batch-size", "32", "--eval-batch-size", "64"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(ckpt.list_checkpoints(out)) < 3 and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    for step, path in ckpt.list_checkpoints(out).items():
        assert ckpt.load_checkpoint_model(path).birthlens_checkpoint["step"] == step
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    # And the run resumes from where it stopped.
    last = max(ckpt.list_checkpoints(out))
    saved = Run(out).read_config()
    rows = train(replace(saved, steps=last + 5), out, resume=True, quiet=True)
    assert rows[-1]["step"] == last + 5
