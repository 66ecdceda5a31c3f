"""probe_all and `birthlens probe`: one result, JSON-ready, on any model."""

import json

import pytest

from birthlens.cli import main
from birthlens.datasets.bigram_task import TaskConfig
from birthlens.errors import BirthlensError
from birthlens.probes import probe_all
from birthlens.probes.planted import associative_memory_model, planted_induction_model

REQUIRED = {"model", "n_layers", "n_heads", "scores", "induction_loss", "memory_recall"}


@pytest.fixture(scope="module")
def planted():
    return planted_induction_model(d_vocab=65, n_ctx=128, n_heads=2)


def test_probe_all_on_planted_model(planted):
    result = probe_all(planted, length=30, task=None)
    assert result.memory.prev_head == (0, 0) and result.memory.induction_head == (1, 0)
    assert result.top(1, "induction")[0][:2] == (1, 0)
    assert set(result.top(2)) == {"prev_token", "induction", "duplicate_token"}
    assert result.induction_loss.second_half < result.induction_loss.first_half
    assert result.memory.ov.value == 1.0 and result.memory.qk.value == 1.0 and result.memory.positional.value == 1.0
    assert not result.memory.feed_forward.applicable
    assert result.composition.top(1, "K")[0][:4] == (0, 0, 1, 0)
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert REQUIRED <= set(payload)
    for name in ("prev_token", "induction", "duplicate_token"):
        assert len(payload["scores"][name]) == 2 and len(payload["scores"][name][0]) == 2
    assert {"first_half", "second_half", "per_position"} <= set(payload["induction_loss"])
    assert payload["memory_recall"]["positional"]["value"] == 1.0
    assert "induction heads:" in result.summary()


def test_probe_all_runs_the_task_on_toy_vocabularies():
    model = associative_memory_model(store=True, feed_forward=True)
    result = probe_all(model, composition=False, task=TaskConfig(k=3, seq_len=64), task_batch_size=8)
    assert result.task is not None and result.task.task["k"] == 3
    assert result.composition is None
    # Fixed triggers: QK recall is read on the K triggers, as in the paper.
    assert result.memory.qk.n == 3 and result.memory.feed_forward.n == 62
    assert json.dumps(result.to_dict(), allow_nan=False)
    auto = probe_all(planted_induction_model(d_vocab=65, n_ctx=64), task="auto", task_batch_size=4)
    assert auto.task is not None and auto.task.task["seq_len"] == 64


def test_probe_all_bad_input(planted):
    with pytest.raises(BirthlensError, match="out of range"):
        probe_all(planted, induction_head=(3, 0))
    with pytest.raises(BirthlensError, match="longer than the model's context"):
        probe_all(planted, length=500)
    with pytest.raises(BirthlensError, match="task="):
        probe_all(planted, task="yes")


def test_cli_probe_writes_json(planted, monkeypatch, tmp_path, capsys):
    import birthlens.commands.probe as command

    monkeypatch.setattr(command, "_load", lambda spec, device: planted)
    out = tmp_path / "probe.json"
    assert main(["probe", "planted", "--json", str(out), "--length", "20", "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert "previous-token heads: L0H0" in text and "induction heads:      L1H0" in text
    payload = json.loads(out.read_text())
    assert REQUIRED <= set(payload) and payload["model"] == "planted"
    assert payload["induction_loss"]["length"] == 20


def test_cli_probe_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import birthlens.commands.probe as command

    assert main(["probe", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    monkeypatch.setattr(command, "_load", lambda spec, device: planted_induction_model(n_ctx=64))
    assert main(["probe", "x", "--length", "100"]) == 2
    assert "longer than the model's context" in capsys.readouterr().err
    assert main(["probe", "x", "--batch-size", "0"]) == 2
    assert main(["probe", "x", "--json", str(tmp_path / "no" / "dir.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
