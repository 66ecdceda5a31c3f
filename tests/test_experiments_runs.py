"""Experiments that train: sweeps, freezing, recording, the claims file and the CLI.

Everything runs on a tiny model for a few steps; the parallel sweep is marked slow
(spawning workers costs seconds of imports).
"""

import json
from dataclasses import replace

import pytest
import torch

from birthlens.cli import main
from birthlens.datasets import TaskConfig
from birthlens.errors import BirthlensError
from birthlens.experiments import scales
from birthlens.experiments.catalog import EXPERIMENTS
from birthlens.experiments.claims import CLAIM_ORDER, Claim, load_claims, write_claims
from birthlens.experiments.recording import attention_entropy, read_recording, record_run
from birthlens.experiments.runner import run_experiments
from birthlens.experiments.scales import Scale
from birthlens.experiments.sweep import RunSpec, grid, read_table, run_sweep
from birthlens.experiments.verdicts import VERDICTS
from birthlens.models import checkpoints as ckpt
from birthlens.models.toy import ToyConfig
from birthlens.models.training import TrainConfig, train

TINY = TrainConfig(
    task=TaskConfig(k=3, seq_len=16),
    model=ToyConfig(d_model=32, n_ctx=16),
    optimizer="adamw",
    lr=3e-2,
    weight_decay=0.0,
    batch_size=16,
    steps=12,
    eval_every=4,
    checkpoint_every=4,
    eval_batch_size=32,
)
TINY_SCALE = Scale(
    name="tiny",
    base=TINY,
    full_model=ToyConfig(variant="full", d_model=32, n_ctx=16, n_layers=2, n_heads=1, d_mlp=64),
    record_every=4,
    eval_every=4,
    freeze_steps=4,
    trigger_counts=(1, 3),
)


@pytest.fixture(autouse=True)
def one_thread():
    # Like the sweep's workers: on a busy 2-core machine, two torch threads run the tiny
    # model many times slower than one (bench/bench_experiments.py).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def set_k(config, factor, value):
    return replace(config, task=replace(config.task, k=value))


def test_grid_names_and_tags():
    specs = grid("k", TINY, {"k": [1, 3]}, seeds=[0, 1], apply=set_k)
    assert [s.name for s in specs] == ["k-k=1-s0", "k-k=1-s1", "k-k=3-s0", "k-k=3-s1"]
    assert specs[2].config.task.k == 3 and specs[2].config.seed == 0
    assert specs[3].tags == {"k": 3, "seed": 1}


def test_tiny_sweep_writes_the_table_and_skips_finished_runs(tmp_path):
    specs = grid("k", TINY, {"k": [1, 3]}, seeds=[0], apply=set_k)
    rows = run_sweep(specs, tmp_path, workers=1, quiet=True)
    assert [r["status"] for r in rows] == ["trained", "trained"]
    table = read_table(tmp_path)
    assert [r["name"] for r in table] == ["k-k=1-s0", "k-k=3-s0"]
    assert table[0]["k"] == 1 and table[0]["steps"] == 12 and "final_icl_accuracy" in table[0]
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["name", "status", "k"] and "step_icl_0.9" in header
    for spec in specs:  # ordinary run folders
        assert (tmp_path / spec.name / "config.json").is_file()
        assert max(ckpt.list_checkpoints(tmp_path / spec.name)) == 12
    mtime = (tmp_path / "k-k=1-s0" / "metrics.jsonl").stat().st_mtime_ns
    again = run_sweep(specs, tmp_path, workers=1, quiet=True)
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    assert again[0]["train_s"] == rows[0]["train_s"]  # timing survives a skip
    assert (tmp_path / "k-k=1-s0" / "metrics.jsonl").stat().st_mtime_ns == mtime


def test_sweep_resumes_an_unfinished_run_and_extends_steps(tmp_path):
    spec = RunSpec("r", TINY)
    train(replace(TINY, steps=8), tmp_path / "r", quiet=True)  # as if interrupted at step 8
    assert run_sweep([spec], tmp_path, workers=1, quiet=True)[0]["status"] == "resumed"
    assert max(ckpt.list_checkpoints(tmp_path / "r")) == 12
    assert read_table(tmp_path)[0]["steps"] == 12


def test_sweep_refuses_a_folder_holding_another_run(tmp_path):
    train(replace(TINY, lr=0.1), tmp_path / "r", quiet=True)
    with pytest.raises(BirthlensError, match="different config"):
        run_sweep([RunSpec("r", TINY)], tmp_path, workers=1, quiet=True)


@pytest.mark.slow
def test_parallel_sweep_matches_the_serial_one(tmp_path):
    specs = grid("k", TINY, {"k": [1, 3]}, seeds=[0], apply=set_k)
    run_sweep(specs, tmp_path / "serial", workers=1, quiet=True)
    run_sweep(specs, tmp_path / "parallel", workers=2, quiet=True)
    for spec in specs:
        a = (tmp_path / "serial" / spec.name / "metrics.jsonl").read_text().splitlines()
        b = (tmp_path / "parallel" / spec.name / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["icl_accuracy"] for x in a] == pytest.approx([json.loads(x)["icl_accuracy"] for x in b], abs=1e-5)


def test_freeze_until_keeps_a_matrix_at_its_initial_value(tmp_path):
    config = replace(TINY, freeze_until={"blocks.1.attn.W_O": 4})
    train(config, tmp_path / "r", quiet=True)
    saved = {step: ckpt.read_checkpoint(path)[1] for step, path in ckpt.list_checkpoints(tmp_path / "r").items()}
    assert saved[4]["model.blocks.1.attn.W_O"].abs().sum() == 0  # frozen through step 4
    assert saved[8]["model.blocks.1.attn.W_O"].abs().sum() > 0  # learning after release
    assert saved[4]["model.blocks.0.attn.W_K"].abs().sum() > 0  # the others were not frozen
    with pytest.raises(BirthlensError, match="not a trainable parameter"):
        train(replace(TINY, freeze_until={"embed.W_E": 4}), tmp_path / "bad", quiet=True)
    with pytest.raises(BirthlensError, match="non-negative"):
        replace(TINY, freeze_until={"blocks.1.attn.W_O": -1}).check()


def test_old_configs_without_freeze_until_still_load():
    values = TINY.to_dict()
    del values["freeze_until"]
    assert TrainConfig.from_dict(values).freeze_until == {}


def test_attention_entropy_is_one_for_uniform_and_zero_for_one_key():
    n = 6
    uniform = torch.tril(torch.ones(n, n)) / torch.arange(1, n + 1)[:, None]
    onehot = torch.eye(n)
    mask = torch.ones(1, n, dtype=torch.bool)
    assert attention_entropy(uniform[None], mask)[0] == pytest.approx(1.0)
    assert attention_entropy(onehot[None], mask)[0] == pytest.approx(0.0, abs=1e-6)
    only_first = torch.zeros(1, n, dtype=torch.bool)
    only_first[0, 0] = True  # one key, no choice: left out
    assert attention_entropy(uniform[None], only_first)[0] != attention_entropy(uniform[None], only_first)[0]  # NaN


def test_record_run_probes_every_checkpoint_once(tmp_path):
    train(TINY, tmp_path / "r", quiet=True)
    assert record_run(tmp_path / "r") is True
    rows = read_recording(tmp_path / "r")
    assert [r["step"] for r in rows] == [0, 4, 8, 12]
    first = rows[0]
    assert first["attn2_entropy"] == pytest.approx(1.0)  # W_K^2 = 0: uniform attention at init
    assert first["wk2_recall"] == pytest.approx(1 / 3)  # 3 fixed triggers, all scores tied
    assert set(first) >= {"wo2_recall", "wk2_recall", "wk2_recall_all", "wk1_recall", "attn1_entropy", "induction_probe"}
    assert record_run(tmp_path / "r") is False  # nothing new


def test_all_experiments_end_to_end_on_a_tiny_scale(tmp_path, monkeypatch):
    monkeypatch.setitem(scales.SCALES, "tiny", TINY_SCALE)
    names = [n for n in EXPERIMENTS if n != "pretrained"]  # the LLM part is covered by its own probes' tests
    claims = run_experiments(names, scale="tiny", out=tmp_path, seeds=1, workers=1, quiet=True)
    assert [c.id for c in claims] == ["1", "2", "2b", "3", "4"]
    assert all(c.verdict in VERDICTS and c.measured and c.n_seeds == 1 for c in claims)
    assert [c.id for c in load_claims(tmp_path / "claims.json")] == ["1", "2", "2b", "3", "4"]
    document = json.loads((tmp_path / "claims.json").read_text())
    assert document["scale"] == "tiny" and document["seeds"] == 1
    assert document["invocations"][-1]["trained"] == 9 and document["invocations"][-1]["wall_s"] > 0
    again = run_experiments(["top-down"], scale="tiny", out=tmp_path, seeds=1, workers=1, quiet=True)
    assert [c.id for c in again] == ["1", "2", "2b", "3", "4"]  # one experiment rerun keeps the other rows
    invocations = json.loads((tmp_path / "claims.json").read_text())["invocations"]
    assert [(i["trained"], i["skipped"]) for i in invocations] == [(9, 0), (0, 1)]
    assert len(read_table(tmp_path / "runs")) == 2 + 1 + 2 + 4  # global, baseline, freezing, data (K=1, 3, random, bigram)


def test_claims_file_merges_by_id_and_validates(tmp_path):
    path = tmp_path / "claims.json"
    write_claims(path, [Claim("2", "top-down", "holds", "x", 3), Claim("1", "global-first", "does not hold", "y", 3)], scale="small")
    write_claims(path, [Claim("2", "top-down", "holds with caveat", "z", 3)], scale="small")
    claims = load_claims(path)
    assert [(c.id, c.verdict, c.measured) for c in claims] == [("1", "does not hold", "y"), ("2", "holds with caveat", "z")]
    assert claims[0].claim.startswith("Global statistics")
    assert load_claims(tmp_path)[0].id == "1"  # the folder works too
    with pytest.raises(BirthlensError):
        Claim("1", "global-first", "sort of", "x", 1)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(BirthlensError, match="not a birthlens claims file"):
        load_claims(tmp_path / "bad.json")
    with pytest.raises(BirthlensError, match="no claims file"):
        load_claims(tmp_path / "missing.json")
    assert set(CLAIM_ORDER) == {c for e in EXPERIMENTS.values() for c in e.claim_ids}


def test_cli_names_match_the_catalogue():
    from birthlens.commands.experiment import NAMES

    assert NAMES == tuple(EXPERIMENTS)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["experiment", "nope", "--out", "X"], "unknown experiment 'nope'"),
        (["experiment", "all", "--scale", "huge", "--out", "X"], "unknown scale 'huge'"),
        (["experiment", "top-down", "--workers", "0", "--out", "X"], "--workers 0"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(argv, message, tmp_path, capsys):
    argv = [str(tmp_path / a) if a == "X" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not any(tmp_path.iterdir())  # nothing was started


def test_paper_scale_uses_the_papers_sizes():
    scale = scales.get_scale("paper")
    specs = [s for e in EXPERIMENTS.values() for s in e.specs(scale, [0])]
    assert specs
    for spec in specs:
        spec.config.check()
        assert spec.config.model.d_model == 256 and spec.config.batch_size == 512 and spec.config.task.seq_len == 256
    simplified = [s for s in specs if s.config.model.variant == "simplified" and not s.config.model.feed_forward]
    assert all(s.config.optimizer == "sgd" and s.config.momentum == 0.9 for s in simplified)


def test_small_scale_is_the_quick_model_on_the_papers_task_with_checkpoints_at_every_evaluation():
    from birthlens.models.training import preset

    scale = scales.get_scale("small")
    quick = preset("quick")
    for spec in EXPERIMENTS["top-down"].specs(scale, [0, 1, 2]):
        c = spec.config
        assert spec.record and c.checkpoint_every == c.eval_every
        assert (c.model, c.optimizer, c.batch_size) == (quick.model, quick.optimizer, quick.batch_size)
        assert (c.task.k, c.task.fixed_triggers, c.task.seq_len) == (5, True, quick.task.seq_len)
        assert (c.lr, c.steps) == (1e-2, 400)
