"""The demo and `birthlens report` on real (small) runs and models.

The quick demo trains a tiny toy for 30 steps, so it runs in seconds; the full demo
(the quick preset and SmolLM2) is marked slow.
"""

from __future__ import annotations

import json
import re

import pytest

from birthlens.cli import main


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--llm", "none", "--out", str(out), "--quiet"]) == 0
    return out


def test_quick_demo_writes_a_report_and_a_bundle(quick_demo, capsys):
    html = (quick_demo / "report.html").read_text()
    for key in ("summary", "birth", "heatmaps", "patterns", "induction_loss", "memory"):
        assert f'id="{key}"' in html
    assert "<script" not in html
    bundle = json.loads((quick_demo / "report.json").read_text())
    assert [m["name"] for m in bundle["models"]] == ["quick@30"]
    assert [r["name"] for r in bundle["runs"]] == ["quick"] and len(bundle["runs"][0]["checkpoints"]) == 4
    # The comparison table has the toy at its first step beside the final one.
    assert 'id="comparison"' in html and "quick@0" in html


def test_demo_again_reuses_the_run_and_prints_a_summary(quick_demo, capsys):
    before = sorted(p.stat().st_mtime for p in (quick_demo / "quick" / "checkpoints").iterdir())
    assert main(["demo", "--quick", "--llm", "none", "--out", str(quick_demo), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"report: {quick_demo / 'report.html'}"
    summary = [line for line in out[1:] if line.startswith("  ")]
    assert 3 <= len(summary) <= 5
    assert summary[0].strip().startswith("toy (quick preset, 30 steps)")
    assert "W_O²" in summary[1] and "quick@30: previous-token head L" in out[3] and "trigger task" in out[3]
    after = sorted(p.stat().st_mtime for p in (quick_demo / "quick" / "checkpoints").iterdir())
    assert before == after


def test_report_from_a_run_folder_and_a_step_spec(quick_demo, tmp_path):
    run = quick_demo / "quick"
    out = tmp_path / "r.html"
    assert main(["report", str(run), f"{run}@10", "--max-checkpoints", "3", "--out", str(out), "--quiet"]) == 0
    html = out.read_text()
    assert 'id="birth"' in html and 'id="comparison"' in html
    assert re.search(r"quick \(3 checkpoints", html)
    assert f"{run}@10" in html


def test_report_bad_options(tmp_path, capsys):
    assert main(["report", "x.json", "--out", str(tmp_path / "r.html"), "--max-checkpoints", "1"]) == 2
    assert "--max-checkpoints" in capsys.readouterr().err


@pytest.mark.slow
def test_full_demo_shows_the_birth_and_smollm2(tmp_path):
    """The README's main command: the quick preset learns its induction head, SmolLM2 has one."""
    from birthlens.reports.demo import run_demo

    result = run_demo(tmp_path / "demo", quiet=True)
    bundle = json.loads(result.bundle.read_text())
    toy, llm = bundle["models"]
    assert toy["probe"]["task"]["icl_accuracy"] > 0.9
    assert llm["probe"]["memory_recall"]["induction_head"][0] >= 10
    assert llm["probe"]["induction_loss"]["second_half"] < llm["probe"]["induction_loss"]["first_half"] / 2
    assert len(result.summary) == 5 and sum(result.timings.values()) < 600
