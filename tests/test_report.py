"""The HTML report from saved data: sections, escaping, figures, ablation JSON, the CLI.

Everything here runs on hand-made probe dictionaries (the shape `birthlens probe --json`
writes), so it needs no model and no training.
"""

from __future__ import annotations

import base64
import json
import math
import re

import pytest

from birthlens.cli import main
from birthlens.reports import figures
from birthlens.reports.ablation import head_effect, intervention_views, parse_head
from birthlens.reports.birth import Birth, half_way_step, pick_steps
from birthlens.reports.entries import ModelEntry
from birthlens.reports.html import render
from birthlens.reports.report import gather, json_kind
from birthlens.reports.sections import ReportData, build_sections, fmt_number

SCRIPT = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_probe(name: str, n_layers: int, n_heads: int, prev=(0, 0), ind=(1, 0)) -> dict:
    """A probe result as `birthlens probe --json` writes it, with planted strongest heads."""
    def grid(best):
        rows = [[0.05 + 0.01 * ((layer * n_heads + h) % 7) for h in range(n_heads)] for layer in range(n_layers)]
        rows[best[0]][best[1]] = 0.9
        return rows

    scores = {"prev_token": grid(prev), "induction": grid(ind), "duplicate_token": grid((0, n_heads - 1))}
    scores["duplicate_token"][0][0] = None  # an unmeasured head
    top = {}
    for key, rows in scores.items():
        cells = [(l, h, v) for l, row in enumerate(rows) for h, v in enumerate(row) if v is not None]
        top[key] = [list(c) for c in sorted(cells, key=lambda c: -c[2])[:5]]
    length = 8
    return {
        "model": name, "n_layers": n_layers, "n_heads": n_heads, "scores": scores, "top": top,
        "induction_loss": {"first_half": 6.0, "second_half": 1.5, "gain": 4.5, "length": length, "n_sequences": 2, "bos": True,
                           "per_position": [6.0] * length + [1.5] * length},
        "memory_recall": {
            "prev_head": list(prev), "induction_head": list(ind),
            "ov": {"probe": "ov", "heads": [list(ind)], "value": 0.75, "metric": "top1", "mean_rank": 1.5, "chance": 0.01, "n": 64, "reason": None},
            "qk": {"probe": "qk", "heads": [list(prev), list(ind)], "value": 0.5, "metric": "top1", "mean_rank": 2.0, "chance": 0.01, "n": 64, "reason": None},
            "positional": {"probe": "positional", "heads": [list(prev)], "value": None, "metric": "top1", "reason": "not applicable: rotary"},
        },
        "composition": {"top": {"K": [[prev[0], prev[1], ind[0], ind[1], 0.3]]}, "shape": [n_layers, n_heads, n_layers, n_heads]},
        "settings": {"length": length, "batch_size": 2, "bos": True},
    }  # fmt: skip


def fake_ablation(name: str, n_layers: int, n_heads: int, head=(1, 0)) -> dict:
    """What the ablation API's results give in to_dict(), wrapped with the model's name."""
    delta = [[0.01 * (layer - h) for h in range(n_heads)] for layer in range(n_layers)]
    delta[head[0]][head[1]] = 2.5
    ablated = [[1.5 + d for d in row] for row in delta]
    single = {"components": [f"{head[0]}.{head[1]}"], "method": "mean", "metric": "second_copy_loss", "higher_is_better": False,
              "baseline": 1.5, "ablated": 4.0, "delta": 2.5, "metric_applies": True, "note": None, "data": {"data": "repeated"}}
    sweep = {"site": "head", "method": "mean", "metric": "second_copy_loss", "higher_is_better": False, "baseline": 1.5,
             "ablated": ablated, "delta": delta, "top": [{"component": f"{head[0]}.{head[1]}", "ablated": 4.0, "delta": 2.5}],
             "metric_applies": True, "note": None, "data": {}}
    return {"model": name, "ablation": single, "sweep": sweep}


def fake_patching(n_layers: int, n_heads: int) -> dict:
    normalised = [[0.1 * ((layer + h) % 3) for h in range(n_heads)] for layer in range(n_layers)]
    return {"site": "head", "direction": "denoising", "per_position": False, "metric": "logit_diff", "higher_is_better": True,
            "clean": 3.0, "corrupted": -1.0, "patched": normalised, "normalised": normalised,
            "top": [{"component": "1.0", "normalised": 0.2}], "note": None, "data": {}}


def fake_birth() -> Birth:
    steps = [0, 20, 40, 60, 80]
    return Birth(
        name="toy", config={"preset": "quick", "steps": 80, "task": {"k": 5, "fixed_triggers": True, "seq_len": 64, "output_dist": "uniform", "ood_split": False}},
        prev_head=(0, 0), induction_head=(1, 0),
        metrics=[{"step": s, "loss": 4 - s / 25, "icl_loss": 4 - s / 25, "icl_accuracy": s / 80, "bigram_loss": 4.0} for s in steps],
        checkpoints=[{"step": s, "ov": min(1, s / 30), "qk": min(1, s / 50), "positional": min(1, s / 70),
                      "prev_token_probe": s / 80, "induction_probe": (s / 80) ** 2} for s in steps],
    )  # fmt: skip


def entry_with_example(name: str, tokens: list[str]) -> ModelEntry:
    entry = ModelEntry.from_probe_json(fake_probe(name, 2, 2))
    n = len(tokens)
    pattern = [[1.0 if k == max(q - 1, 0) else 0.0 for k in range(n)] for q in range(n)]
    entry.example = {"text": "".join(tokens), "tokens": tokens,
                     "patterns": {"prev_token": {"head": [0, 0], "pattern": pattern}, "induction": {"head": [1, 0], "pattern": pattern}}}  # fmt: skip
    return entry


def image_sources(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


# ---- the page ------------------------------------------------------------------


def test_every_section_renders_from_saved_data():
    toy = entry_with_example("toy@80", list("abcabc"))
    toy.ablation = fake_ablation("toy@80", 2, 2)
    llm = ModelEntry.from_probe_json(fake_probe("llm", 30, 9, prev=(16, 0), ind=(18, 6)))
    llm.composition = {"rows": [[16, 0], [11, 1]], "cols": [[18, 6], [17, 3]], "K": [[0.2, 0.1], [0.05, None]]}
    data = ReportData(models=[toy, llm], runs=[fake_birth()], compare_only=[ModelEntry.from_probe_json(fake_probe("toy@0", 2, 2))])
    keys = [s.key for s in build_sections(data)]
    assert keys == ["summary", "comparison", "birth", "heatmaps", "top_heads", "patterns", "induction_loss", "memory", "composition", "ablation"]
    html = render(data)
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
    # Self-contained: no external resource of any kind.
    assert not re.search(r'(src|href)="(?!data:image/png;base64,|#)', html)
    assert "@import" not in html and "url(" not in html
    for src in image_sources(html):
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    # The comparison: one column per model, the ablation effect of the induction head.
    comparison = html[html.index('id="comparison"') : html.index('id="birth"')]
    assert all(name in comparison for name in ("toy@0", "toy@80", "llm"))
    assert "L18H6" in comparison and "+2.500 second_copy_loss" in comparison
    # The birth: half-way steps interpolated, in the paper's order.
    assert "top-down order" in html and "≈ 15" in html


def test_claims_json_gets_its_section(tmp_path):
    claims = {"format_version": 1, "scale": "small", "seeds": 3, "claims": [
        {"id": "1", "claim": "Global statistics first.", "verdict": "holds", "measured": "bigram loss settles at step 40", "n_seeds": 3},
        {"id": "2", "claim": "Top-down.", "verdict": "does not hold", "measured": f"W_K² first {SCRIPT}", "n_seeds": 3, "note": "coarse"},
    ]}  # fmt: skip
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    data = gather([str(path)])
    assert [s.key for s in build_sections(data)] == ["claims"]
    html = render(data)
    assert 'class="verdict-ok">holds<' in html and 'class="verdict-bad">does not hold<' in html
    assert SCRIPT not in html and "W_K² first &lt;script&gt;" in html


def test_sections_appear_only_with_their_data():
    only_probe = ReportData(models=[ModelEntry.from_probe_json(fake_probe("m", 2, 2))])
    keys = [s.key for s in build_sections(only_probe)]
    assert "comparison" not in keys and "birth" not in keys and "ablation" not in keys and "patterns" not in keys
    assert {"summary", "heatmaps", "memory", "induction_loss"} <= set(keys)
    assert [s.key for s in build_sections(ReportData(runs=[fake_birth()]))] == ["summary", "birth"]
    assert "Nothing to show" in render(ReportData())


def test_token_strings_and_names_are_escaped():
    # "$\frac{$" would stop matplotlib's mathtext: names and tokens are drawn as plain text.
    entry = entry_with_example(f"model {SCRIPT} $\\frac{{$", ["<b>", SCRIPT, "$x$", "a&b", "\n", " the"])
    other = ModelEntry.from_probe_json(fake_probe("$\\frac{$ <i>", 2, 2))
    html = render(ReportData(title=f"title {SCRIPT}", models=[entry, other], runs=[fake_birth()]))
    assert SCRIPT not in html and "$ <i>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;" in html and "&lt;i&gt;" in html
    assert "a&amp;b" in html


def test_a_token_is_drawn_as_itself():
    assert figures.token_label(" the\n") == "·the\\n"
    assert figures.token_label("\x00") == "\\x00"
    assert figures.token_label("x" * 40).endswith("…") and len(figures.token_label("x" * 40)) == 12
    # Mathtext would fail on these; parse_math=False draws them as text.
    image = figures.attention_pattern([[1.0, 0.0], [0.5, 0.5]], ["$x$", r"\frac{"], "L0H0 $")
    assert image.width > 0 and image.src.startswith("data:image/png;base64,")


def test_heatmaps_of_a_30_layer_model_label_every_layer():
    scores = fake_probe("llm", 30, 9)["scores"]
    image = figures.score_heatmaps(scores, "llm", {"induction": (18, 6)})
    png = base64.b64decode(image.src.split(",", 1)[1])
    assert png[:8] == PNG_MAGIC and 600 < image.height < 1000 and image.width < 1240
    assert figures._tick_step(30, 32) == 1


def test_number_format():
    assert fmt_number(None) == "—" and fmt_number(math.nan) == "—"
    assert fmt_number(0.12345) == "0.123" and fmt_number(2e-5) == "2.00e-05" and fmt_number(1234) == "1,234"
    assert fmt_number("L1H0") == "L1H0"


# ---- birth ------------------------------------------------------------------------


def test_half_way_step():
    assert half_way_step([0, 10, 20], [0.0, 0.2, 1.0]) == pytest.approx(13.75)
    assert half_way_step([0, 10, 20], [4.0, 3.0, 2.0]) == 10.0
    assert half_way_step([0, 10, 20], [0.5, 0.5, 0.51]) is None  # no birth to mark
    assert half_way_step([0], [1.0]) is None
    assert half_way_step([0, 10, 20], [None, 0.0, 1.0]) == 15.0
    assert pick_steps(list(range(0, 401, 20)), 5) == [0, 100, 200, 300, 400]
    assert pick_steps([0, 40], None) == [0, 40]


def test_birth_round_trips_through_json():
    birth = fake_birth()
    again = Birth.from_dict(json.loads(json.dumps(birth.to_dict())))
    assert again.crossings() == birth.crossings()
    assert "loss" not in again.series()  # trained on in-context targets: same curve as icl_loss
    assert again.crossings()["ov"] < again.crossings()["qk"] < again.crossings()["positional"]


# ---- ablation JSON ------------------------------------------------------------------


def test_intervention_views_read_what_they_find():
    raw = fake_ablation("m", 2, 3, head=(1, 2))
    single, sweep = intervention_views(raw, 2, 3)
    assert single["rows"] == [("second_copy_loss", 1.5, 4.0, 2.5)] and single["components"] == ["L1H2"]
    assert sweep["matrix"][1][2] == 2.5 and sweep["top"] == [("L1H2", 2.5)] and sweep["xlabel"] == "head"
    assert head_effect(raw, (1, 2)) == (2.5, "second_copy_loss")
    assert head_effect({"sweep": raw["sweep"]}, (1, 0)) == (pytest.approx(0.01), "second_copy_loss")
    assert head_effect(raw, (0, 0)) == (0.01 * 0, "second_copy_loss")
    # Patching results, a per-layer table, and wrappers of any shape render too.
    patching = intervention_views({"results": [fake_patching(2, 3)]}, 2, 3)[0]
    assert patching["kind"] == "patching" and patching["matrix"][1][1] == pytest.approx(0.2)
    per_layer = {"site": "attn_out", "baseline": 1.0, "ablated": [1.5, 2.0], "delta": [0.5, 1.0], "metric": "second_copy_loss"}
    view = intervention_views(per_layer, 2, 3)[0]
    assert view["matrix"] == [[0.5], [1.0]] and view["xlabel"] == "attn_out" and view["top"][0] == ("1.0", 1.0)
    assert intervention_views({"model": "m"}) == [] and intervention_views([1, 2]) == []
    assert intervention_views(raw, 30, 9)[1]["matrix"] is None  # a table of the wrong shape is not drawn
    assert parse_head("17.4") == (17, 4) and parse_head("attn.3") is None and parse_head([1, 2]) == (1, 2)


def test_json_kinds():
    assert json_kind(fake_probe("m", 2, 2)) == "probe"
    assert json_kind(fake_ablation("m", 2, 2)) == "ablation" and json_kind(fake_patching(2, 2)) == "ablation"
    assert json_kind({"models": []}) == "bundle"
    assert json_kind({"claims": []}) == "claims"
    assert json_kind({"hello": 1}) is None and json_kind([]) is None


# ---- gather and the CLI ---------------------------------------------------------------


def test_report_cli_from_probe_and_ablation_json(tmp_path, capsys):
    probe, ablation, out = tmp_path / "p.json", tmp_path / "a.json", tmp_path / "r.html"
    probe.write_text(json.dumps(fake_probe("toy", 2, 2)))
    ablation.write_text(json.dumps(fake_ablation("toy", 2, 2)))
    assert main(["report", str(ablation), str(probe), "--out", str(out), "--bundle", str(tmp_path / "b.json")]) == 0
    html = out.read_text()
    assert 'id="ablation"' in html and "second_copy_loss" in html
    # The bundle redraws the same report.
    assert main(["report", str(tmp_path / "b.json"), "--out", str(tmp_path / "again.html"), "--quiet"]) == 0
    assert 'id="ablation"' in (tmp_path / "again.html").read_text()
    assert "wrote" in capsys.readouterr().out


def test_an_unnamed_result_belongs_to_the_model_before_it(tmp_path):
    files = {name: tmp_path / f"{name}.json" for name in ("toy", "llm", "patch", "abl")}
    files["toy"].write_text(json.dumps(fake_probe("toy", 2, 2)))
    files["llm"].write_text(json.dumps(fake_probe("llm", 3, 2)))
    files["patch"].write_text(json.dumps(fake_patching(3, 2)))
    files["abl"].write_text(json.dumps(fake_ablation("toy", 2, 2)))  # named: goes to toy wherever it is
    data = gather([str(files[n]) for n in ("toy", "llm", "patch", "abl")])
    toy, llm = data.models
    assert llm.ablation["direction"] == "denoising" and toy.ablation["model"] == "toy"
    again = gather([str(files[n]) for n in ("toy", "abl", "llm", "patch", "patch")])
    assert len(again.models[1].ablation["results"]) == 2
    keys = [s.key for s in build_sections(again)]
    assert "ablation" in keys


def test_report_cli_errors(tmp_path, capsys):
    bad, unknown, probe = tmp_path / "bad.json", tmp_path / "unknown.json", tmp_path / "p.json"
    bad.write_text("{not json")
    unknown.write_text('{"hello": 1}')
    probe.write_text(json.dumps(fake_probe("toy", 2, 2)))
    orphan = tmp_path / "orphan.json"
    orphan.write_text(json.dumps(fake_ablation("other", 2, 2)))
    cases = [
        ([str(bad)], "not a JSON file"),
        ([str(unknown)], "unknown JSON"),
        ([str(orphan)], "needs its model"),
        ([str(probe), str(orphan)], "is none of this report's models"),
        (["no-such-model-spec"], "unknown model spec"),
    ]
    for inputs, message in cases:
        assert main(["report", *inputs, "--out", str(tmp_path / "r.html")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["report", str(probe), "--out", str(tmp_path / "missing" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_gather_titles_a_single_model(tmp_path):
    probe = tmp_path / "p.json"
    probe.write_text(json.dumps(fake_probe(f"x{SCRIPT}", 2, 2)))
    data = gather([str(probe)])
    assert data.title.endswith(SCRIPT) and SCRIPT not in render(data)
