"""Ablation, activation patching and path patching on small models: exactness, batching, bad input."""

import json

import pytest
import torch

from birthlens.datasets import BigramTask, TaskConfig
from birthlens.errors import BirthlensError
from birthlens.models.toy import ToyConfig, build_toy_model
from birthlens.probes.ablation import ablate, ablation_sweep, ablation_values
from birthlens.probes.behaviour import icl_accuracy, icl_loss, second_copy_loss
from birthlens.probes.components import Component, parse_components
from birthlens.probes.interventions import Edit, component_activation, run_edits, trace
from birthlens.probes.metrics import NOT_TRAINED_NOTE, Scorer
from birthlens.probes.pairs import redraw_outputs, repeated_pair, task_pair
from birthlens.probes.patching import patch, patching_sweep
from birthlens.probes.path_patching import path_patch
from birthlens.probes.planted import planted_induction_model


@pytest.fixture(scope="module")
def planted():
    # L0H0 an exact previous-token head, L1H0 an exact induction head; attention only.
    return planted_induction_model(d_vocab=64, n_ctx=64)


@pytest.fixture(scope="module")
def full_toy():
    # MLPs and layer norm, 65-token vocabulary: every site exists and the task applies.
    return build_toy_model(ToyConfig(variant="full", n_layers=2, n_heads=2, d_model=32, d_mlp=64, n_ctx=48), seed=0)


@pytest.fixture(scope="module")
def pair(full_toy):
    return repeated_pair(full_toy, length=12, batch_size=4, seed=0)


def every_component(model):
    heads = [Component("head", layer, h) for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    mlps = [] if model.cfg.attn_only else [Component("mlp_out", layer) for layer in range(model.cfg.n_layers)]
    return [Component("embed"), *heads, *mlps]


# ---- names and prompts -------------------------------------------------------


def test_components_parse_and_print(full_toy):
    text = "1.0, 0.1,attn.1,mlp.0,resid.1,embed,-1.-1"
    components = parse_components(full_toy, text)
    assert [str(c) for c in components] == ["1.0", "0.1", "attn.1", "mlp.0", "resid.1", "embed", "1.1"]
    assert components[0].hook_name == "blocks.1.attn.hook_z"
    assert components[3].hook_name == "blocks.0.hook_mlp_out"
    assert parse_components(full_toy, [(1, 0), "mlp.1"]) == [Component("head", 1, 0), Component("mlp_out", 1)]


@pytest.mark.parametrize("text", ["1.x", "2.0", "0.5", "mlp.7", "attn", "heads", "", " , "])
def test_bad_components_are_one_line_errors(full_toy, text):
    with pytest.raises(BirthlensError) as info:
        parse_components(full_toy, text)
    assert "\n" not in str(info.value)


def test_attention_only_models_have_no_mlp(planted):
    with pytest.raises(BirthlensError, match="no MLP"):
        parse_components(planted, "mlp.0")


def test_repeated_pair_redraws_only_the_second_copy(planted):
    pair = repeated_pair(planted, length=10, batch_size=3, seed=0)
    assert pair.clean.shape == (3, 20)  # no tokenizer: no BOS
    assert torch.equal(pair.clean[:, :10], pair.clean[:, 10:])
    assert torch.equal(pair.corrupted[:, :10], pair.clean[:, :10])
    assert not torch.equal(pair.corrupted[:, 10:], pair.clean[:, 10:])
    assert pair.answer_mask.sum() == 3 * 9 and pair.answer_mask[:, 10:19].all()
    assert torch.equal(pair.clean_labels[:, :-1], pair.clean[:, 1:])


def test_redraw_outputs_replaces_every_output_consistently():
    task = BigramTask(TaskConfig(k=3, fixed_triggers=False, seq_len=64))
    batch = task.sample(16, seed=3)
    corrupted = redraw_outputs(batch, seed=5, vocab_size=task.vocab_size)
    after_trigger = torch.zeros_like(batch.tokens, dtype=torch.bool)
    after_trigger[:, 1:] = batch.occurrence[:, :-1] >= 1
    assert torch.equal(corrupted[~after_trigger], batch.tokens[~after_trigger])
    for b in range(16):
        for k in range(3):
            follows = after_trigger[b] & (torch.roll(batch.tokens[b], 1) == batch.triggers[b, k])
            new = corrupted[b][follows].unique()
            if follows.any():
                assert len(new) == 1 and int(new) != int(batch.outputs[b, k]) and int(new) not in batch.triggers[b].tolist()


def test_task_pair_fits_the_model(full_toy):
    pair = task_pair(full_toy, batch_size=8, seed=0)
    assert pair.clean.shape == (8, 48) and pair.answer_mask.any()


# ---- metrics -----------------------------------------------------------------


@torch.inference_mode()
def test_scorer_agrees_with_behaviour_metrics(full_toy, pair):
    logits = full_toy(pair.clean)
    scorer = Scorer(full_toy, pair, "second_copy_loss")
    expected = float(second_copy_loss(logits, pair.clean, 12).mean())
    assert scorer.from_logits(logits) == pytest.approx(expected, abs=1e-6)
    assert float(scorer(trace(full_toy, pair.clean).final)[0]) == pytest.approx(expected, abs=1e-5)

    task = task_pair(full_toy, batch_size=8, seed=0)
    logits = full_toy(task.clean)
    batch = BigramTask(TaskConfig(seq_len=48)).sample(8, seed=0)
    assert Scorer(full_toy, task, "icl_accuracy").from_logits(logits) == pytest.approx(icl_accuracy(logits, batch))
    assert Scorer(full_toy, task, "icl_loss").from_logits(logits) == pytest.approx(icl_loss(logits, batch), abs=1e-5)


# ---- exactness -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["zero", "mean", "resample"])
def test_ablating_nothing_changes_nothing(full_toy, pair, method):
    result = ablate(full_toy, [], method=method, pair=pair)
    assert result.ablated == result.baseline and result.delta == 0


def test_replacing_activations_with_themselves_is_exact(full_toy, pair):
    components = every_component(full_toy)[1:]
    base = trace(full_toy, pair.clean, capture={c.hook_name for c in components})
    scorer = Scorer(full_toy, pair, "second_copy_loss")
    same = [[Edit(c, component_activation(base.captured, c))] for c in components]
    values = run_edits(full_toy, base, same, scorer, copies=1)
    assert torch.equal(values, scorer(base.final).double().expand(len(components)))


@pytest.mark.parametrize("model_name", ["full_toy", "planted"])
def test_patching_everything_from_clean_recovers_clean_exactly(request, model_name):
    model = request.getfixturevalue(model_name)
    pair = repeated_pair(model, length=12, batch_size=4, seed=1)
    for metric in ("second_copy_loss", "logit_diff"):
        whole_input = patch(model, ["resid.0"], pair=pair, metric=metric)
        everything = patch(model, every_component(model), pair=pair, metric=metric)
        assert whole_input.patched == whole_input.clean and whole_input.normalised == 1.0
        assert everything.patched == everything.clean and everything.normalised == 1.0
        noised = patch(model, every_component(model), pair=pair, metric=metric, direction="noising")
        assert noised.patched == noised.corrupted and noised.normalised == 0.0
    sweep = patching_sweep(model, site="resid_pre", pair=pair)
    assert torch.allclose(sweep.normalised, torch.ones(model.cfg.n_layers, dtype=torch.float64), atol=1e-5)


# ---- batching -----------------------------------------------------------------


def test_sweep_matches_one_ablation_at_a_time(full_toy, pair):
    sweep = ablation_sweep(full_toy, method="mean", pair=pair)
    one_pass = ablation_sweep(full_toy, method="mean", pair=pair, copies=1)
    assert sweep.ablated.shape == (2, 2)
    for layer in range(2):
        for head in range(2):
            single = ablate(full_toy, [(layer, head)], method="mean", pair=pair)
            assert float(sweep.ablated[layer, head]) == pytest.approx(single.ablated, abs=1e-5)
            assert float(one_pass.ablated[layer, head]) == pytest.approx(single.ablated, abs=1e-5)
    mlp = ablation_sweep(full_toy, site="mlp_out", method="zero", pair=pair)
    assert float(mlp.ablated[1]) == pytest.approx(ablate(full_toy, ["mlp.1"], method="zero", pair=pair).ablated, abs=1e-5)
    partial = ablation_sweep(full_toy, method="mean", pair=pair, layers=[1])
    assert torch.isnan(partial.ablated[0]).all() and torch.allclose(partial.ablated[1], sweep.ablated[1], atol=1e-5)


def test_bfloat16_compute_stays_close_to_float32(full_toy, pair):
    exact = ablation_sweep(full_toy, method="mean", pair=pair)
    fast = ablation_sweep(full_toy, method="mean", pair=pair, dtype="bfloat16")
    assert torch.allclose(fast.ablated, exact.ablated, atol=0.05) and fast.data["compute_dtype"] == "bfloat16"
    assert ablate(full_toy, [], pair=pair, dtype="bfloat16").delta == 0
    with pytest.raises(BirthlensError, match="compute dtype"):
        ablate(full_toy, ["1.0"], pair=pair, dtype="float8")


def test_per_position_patching_fills_the_swept_positions(full_toy, pair):
    sweep = patching_sweep(full_toy, site="head", pair=pair, per_position=True, positions=[0, 12, -1])
    assert sweep.patched.shape == (2, 2, 24)
    assert not torch.isnan(sweep.patched[..., [0, 12, 23]]).any()
    assert torch.isnan(sweep.patched[..., 1:12]).all()
    name, position, value = sweep.top(1)[0]
    assert position in (0, 12, 23) and isinstance(value, float)


# ---- a model with a known circuit ------------------------------------------------


def test_planted_induction_head_is_found(planted):
    pair = repeated_pair(planted, length=16, batch_size=4, seed=0)
    sweep = ablation_sweep(planted, method="zero", pair=pair)
    assert sweep.top(2)[0][0] in ("1.0", "0.0") and sweep.top(2)[1][0] in ("1.0", "0.0")
    assert sweep.delta[1, 0] > 1.0 and abs(float(sweep.delta[1, 1])) < 0.3 * float(sweep.delta[1, 0])
    assert patching_sweep(planted, pair=pair).top(1)[0][0] == "1.0"


def test_path_patching_through_keys_on_the_planted_circuit(planted):
    pair = repeated_pair(planted, length=16, batch_size=4, seed=0)
    keys = path_patch(planted, "0.0", "1.0", receiver_input="k", source="zero", pair=pair)
    values = path_patch(planted, "0.0", "1.0", receiver_input="v", source="zero", pair=pair)
    assert keys.full > keys.baseline + 1.0  # losing the previous-token head breaks induction
    assert keys.fraction > 0.9 and abs(values.fraction) < 0.1
    assert not planted.cfg.use_split_qkv_input and not planted.cfg.ungroup_grouped_query_attention


def test_path_patching_bad_input(planted):
    with pytest.raises(BirthlensError, match="earlier layer"):
        path_patch(planted, "1.0", "1.1")
    with pytest.raises(BirthlensError, match="not a head"):
        path_patch(planted, "resid.0", "1.0")
    with pytest.raises(BirthlensError, match="receiver input"):
        path_patch(planted, "0.0", "1.0", receiver_input="x")
    with pytest.raises(BirthlensError, match="source"):
        path_patch(planted, "0.0", "1.0", source="noise")


# ---- options and bad input ----------------------------------------------------


def test_ablation_values_shapes(full_toy, pair):
    head, mlp = Component("head", 1, 0), Component("mlp_out", 0)
    ref = pair.corrupted
    per_position = ablation_values(full_toy, [head, mlp], "mean", ref, 4, 24, "position")
    assert per_position[head].shape == (1, 24, 16) and per_position[mlp].shape == (1, 24, 32)
    assert ablation_values(full_toy, [head], "mean", ref, 4, 24, "all")[head].shape == (1, 1, 16)
    assert ablation_values(full_toy, [head], "resample", ref[:3], 4, 24)[head].shape == (4, 24, 16)
    with pytest.raises(BirthlensError, match="same length"):
        ablation_values(full_toy, [head], "mean", ref[:, :10], 4, 24, "position")


def test_bad_options_are_one_line_errors(full_toy, pair):
    cases = [
        lambda: ablate(full_toy, ["1.0"], method="shuffle", pair=pair),
        lambda: ablate(full_toy, ["1.0"], metric="perplexity", pair=pair),
        lambda: ablate(full_toy, ["1.0"], metric="second_copy_loss", data="task"),
        lambda: ablate(full_toy, ["1.0"], mean_over="batch", pair=pair),
        lambda: patch(full_toy, ["1.0"], direction="sideways", pair=pair),
        lambda: patch(full_toy, ["1.0"], positions=[99], pair=pair),
        lambda: patching_sweep(full_toy, site="embed", pair=pair),
        lambda: ablation_sweep(full_toy, layers=[5], pair=pair),
    ]
    for case in cases:
        with pytest.raises(BirthlensError) as info:
            case()
        assert "\n" not in str(info.value)


def test_task_metric_on_a_model_that_never_saw_the_task_is_labelled(full_toy):
    stranger = planted_induction_model(d_vocab=80, n_ctx=64)
    result = ablate(stranger, ["1.0"], metric="icl_accuracy", batch_size=4)
    assert result.note == NOT_TRAINED_NOTE and result.to_dict()["metric_applies"] is False
    assert ablate(full_toy, ["1.0"], metric="icl_accuracy", batch_size=4).note is None
    with pytest.raises(BirthlensError, match="vocabulary"):
        ablate(planted_induction_model(d_vocab=64, n_ctx=64), ["1.0"], metric="icl_accuracy")


def test_results_are_json_ready(full_toy, pair):
    results = [
        ablate(full_toy, ["1.0", "mlp.0"], pair=pair),
        ablation_sweep(full_toy, pair=pair, method="resample"),
        patch(full_toy, ["0.1"], pair=pair, positions=[3]),
        patching_sweep(full_toy, site="attn_out", pair=pair, direction="noising"),
        path_patch(full_toy, "0.0", "1.1", pair=pair, source="corrupted"),
    ]
    for result in results:
        payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert payload["metric"] == "second_copy_loss"
    ablation = results[0].to_dict()
    assert {"baseline", "ablated", "delta"} <= set(ablation)
    assert len(results[1].to_dict()["ablated"]) == 2 and len(results[1].top(3)) == 3
