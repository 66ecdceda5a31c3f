"""`birthlens train` from the command line: help, a short run, one-line errors."""

import subprocess
import sys

import pytest

from birthlens.cli import main


def birthlens(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "birthlens.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_help_explains_the_commands():
    result = birthlens("--help")
    assert result.returncode == 0 and "train" in result.stdout
    result = birthlens("train", "--help")
    assert result.returncode == 0
    for flag in ("--preset", "--out", "--resume", "--device", "--k", "--ood", "--seed"):
        assert flag in result.stdout
    # Real defaults are shown; options that take the preset's value show none.
    assert "(default: quick)" in result.stdout and "(default: None)" not in result.stdout


def test_short_run_writes_a_run_folder(tmp_path):
    out = tmp_path / "run"
    result = birthlens("train", "--out", str(out), "--steps", "10", "--eval-every", "5", "--d-model", "32",
                       "--seq-len", "32", "--n-ctx", "32", "--batch-size", "16", "--eval-batch-size", "32")
    assert result.returncode == 0, result.stderr
    assert "icl_accuracy" in result.stdout
    assert (out / "config.json").is_file() and (out / "metrics.jsonl").is_file()
    assert len(list((out / "checkpoints").glob("step_*.safetensors"))) == 2  # steps 0 and 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["--k", "100"], "number of triggers"),
        (["--seq-len", "300", "--n-ctx", "64"], "longer than the model's context"),
        (["--steps", "-5"], "must not be negative"),
        (["--resume"], "nothing to resume"),
        (["--lr", "0"], "must be positive"),
    ],
)
def test_bad_options_give_one_line_errors(tmp_path, capsys, args, message):
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_unknown_preset_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(tmp_path / "run"), "--preset", "huge"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "preset, flag, fixed",
    [("quick", "--fixed-triggers", True), ("paper", "--random-triggers", False), ("quick", None, False), ("paper", None, True)],
)
def test_trigger_flags_override_the_preset(preset, flag, fixed):
    import argparse

    from birthlens.commands.train import config_from_args, register
    from birthlens.models.training import preset as make_preset

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", "--out", "x", "--preset", preset, *([flag] if flag else [])])
    assert config_from_args(args, make_preset(preset)).task.fixed_triggers is fixed


def test_fixed_and_random_triggers_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(tmp_path / "run"), "--fixed-triggers", "--random-triggers"])
    assert exit_info.value.code == 2 and "not allowed with" in capsys.readouterr().err
