"""`birthlens ablate` and `birthlens patch` on a saved run: output, JSON, steps, one-line errors."""

import json

import pytest

import birthlens
from birthlens.cli import main
from birthlens.datasets import TaskConfig
from birthlens.models.toy import ToyConfig
from birthlens.models.training import preset, train
from birthlens.probes.planted import planted_induction_model

# A run that only needs to exist, not to learn: a few steps of a small model.
TINY = dict(
    task=TaskConfig(k=3, seq_len=32),
    model=ToyConfig(d_model=32, n_ctx=32),
    steps=4,
    eval_every=2,
    checkpoint_every=2,
    batch_size=8,
    eval_batch_size=8,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    train(preset("quick", **TINY), out, quiet=True)
    return str(out)


def cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ablate_prints_baseline_and_ablated_and_writes_json(run, capsys, tmp_path):
    out = tmp_path / "ablate.json"
    code, stdout, _ = cli(capsys, "ablate", run, "--heads", "1.0", "--method", "zero", "--batch-size", "16", "--json", str(out))
    assert code == 0
    assert "baseline" in stdout and "ablated" in stdout and "icl_accuracy" in stdout
    payload = json.loads(out.read_text())
    assert {"baseline", "ablated", "delta", "model", "components", "method"} <= set(payload)
    assert payload["components"] == ["1.0"] and payload["method"] == "zero"
    assert payload["data"]["task"]["k"] == 3  # the run's own task
    assert payload["delta"] == pytest.approx(payload["ablated"] - payload["baseline"])


def test_ablate_follows_a_run_through_its_steps(run, capsys):
    for step in (0, 2, 4):
        code, stdout, _ = cli(capsys, "ablate", f"{run}@{step}", "--heads", "0.0,1.0", "--layers", "attn.1", "--batch-size", "4")
        assert code == 0 and "0.0, 1.0, attn.1" in stdout


def test_ablate_sweep_lists_every_head(run, capsys, tmp_path):
    out = tmp_path / "sweep.json"
    code, stdout, _ = cli(capsys, "ablate", run, "--sweep", "--metric", "second_copy_loss", "--length", "8", "--dtype", "bfloat16", "--json", str(out))
    assert code == 0 and "1.0" in stdout and "0.0" in stdout
    payload = json.loads(out.read_text())
    assert len(payload["ablated"]) == 2 and len(payload["delta"][0]) == 1 and payload["baseline"] > 0
    assert payload["data"]["compute_dtype"] == "bfloat16"
    assert [entry["component"] for entry in payload["top"]] in (["0.0", "1.0"], ["1.0", "0.0"])


def test_patch_sweep_single_and_path(run, capsys, tmp_path):
    code, stdout, _ = cli(capsys, "patch", run, "--site", "resid_pre", "--per-position", "--positions", "0,-1", "--metric", "logit_diff", "--batch-size", "4")
    assert code == 0 and "resid." in stdout
    out = tmp_path / "patch.json"
    code, stdout, _ = cli(capsys, "patch", run, "--layers", "resid.0", "--metric", "logit_diff", "--data", "task", "--batch-size", "4", "--json", str(out))
    payload = json.loads(out.read_text())
    assert code == 0 and payload["normalised"] == 1.0 and payload["patched"] == payload["clean"]
    out = tmp_path / "path.json"
    code, stdout, _ = cli(capsys, "patch", run, "--path-from", "0.0", "--path-to", "1.0", "--batch-size", "4", "--json", str(out))
    payload = json.loads(out.read_text())
    assert code == 0 and "route" in stdout and {"baseline", "full", "path", "fraction"} <= set(payload)


def test_a_metric_that_does_not_apply_is_labelled(capsys, tmp_path, monkeypatch):
    stranger = planted_induction_model(d_vocab=80, n_ctx=64)
    monkeypatch.setattr(birthlens, "load", lambda spec, device="cpu": stranger, raising=False)
    out = tmp_path / "label.json"
    code, stdout, _ = cli(capsys, "ablate", "stranger", "--heads", "1.0", "--metric", "icl_accuracy", "--batch-size", "4", "--json", str(out))
    assert code == 0 and "note: not meaningful" in stdout
    assert json.loads(out.read_text())["metric_applies"] is False


@pytest.mark.parametrize(
    "argv",
    [
        ["ablate", "{run}", "--heads", "1.x"],
        ["ablate", "{run}", "--heads", "2.0"],
        ["ablate", "{run}", "--heads", "1.3"],
        ["ablate", "{run}", "--heads", "attn.1"],
        ["ablate", "{run}", "--layers", "mlp.0"],
        ["ablate", "{run}", "--heads", "1.0", "--method", "shuffle"],
        ["ablate", "{run}", "--heads", "1.0", "--metric", "perplexity"],
        ["ablate", "{run}", "--heads", "1.0", "--metric", "second_copy_loss", "--data", "task"],
        ["ablate", "{run}", "--heads", "1.0", "--data", "wiki"],
        ["ablate", "{run}", "--heads", "1.0", "--mean-over", "batch"],
        ["ablate", "{run}", "--heads", "1.0", "--dtype", "float8"],
        ["ablate", "{run}", "--heads", "1.0", "--batch-size", "0"],
        ["ablate", "{run}", "--heads", "1.0", "--json", "/no/such/folder/out.json"],
        ["ablate", "{run}"],
        ["ablate", "{run}", "--sweep", "--heads", "1.0"],
        ["ablate", "{run}", "--sweep", "--site", "embed"],
        ["ablate", "{run}@3", "--heads", "1.0"],
        ["patch", "{run}", "--direction", "sideways"],
        ["patch", "{run}", "--path-from", "0.0"],
        ["patch", "{run}", "--path-from", "1.0", "--path-to", "0.0"],
        ["patch", "{run}", "--path-from", "0.0", "--path-to", "1.0", "--heads", "1.0"],
        ["patch", "{run}", "--positions", "one"],
        ["patch", "{run}", "--heads", "1.0", "--positions", "99"],
        ["patch", "{run}", "--receiver-input", "x", "--path-from", "0.0", "--path-to", "1.0"],
    ],
)
def test_bad_input_is_a_one_line_error(run, capsys, argv):
    code, stdout, stderr = cli(capsys, *[arg.format(run=run) for arg in argv])
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1
