"""Probes on SmolLM2-135M (30 layers x 9 heads, GQA, rotary): skipped while it cannot load."""

import json

import pytest

from birthlens.probes import attention_scores, ov_recall, positional_recall, probe_all, repeated_prompts
from birthlens.probes.reference import detect_head_scores, spearman


@pytest.fixture(scope="module")
def model(request):
    try:
        return request.getfixturevalue("smollm2")
    except Exception as exc:  # the loader is someone else's work in progress
        pytest.skip(f"SmolLM2 unavailable: {type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def suite(model):
    return probe_all(model, name="smollm2-135m")


def test_agrees_with_detect_head(model):
    # detect_head runs one full-cache pass per prompt and head type: keep it to two prompts.
    tokens = repeated_prompts(model, length=40, batch_size=2, seed=0)
    ours = attention_scores(model, tokens)
    for name in ("prev_token", "induction"):
        theirs = detect_head_scores(model, tokens, name)
        assert spearman(ours[name].values, theirs) >= 0.9, name


def test_suite_finds_the_known_heads(suite):
    assert suite.n_layers == 30 and suite.n_heads == 9
    # SmolLM2's induction heads sit around layers 17-18.
    assert all(16 <= layer <= 19 for layer, _, _ in suite.top(3, "induction"))
    assert suite.top(1, "induction")[0][2] > 0.7
    assert suite.top(1, "prev_token")[0][2] > 0.7
    assert suite.induction_loss.first_half - suite.induction_loss.second_half > 5
    assert suite.settings["bos"]  # SmolLM2 prepends its BOS
    memory = suite.memory
    assert memory.prev_head[0] < memory.induction_head[0]
    assert memory.qk.value > 10 * memory.qk.chance  # prefix matching is far above chance
    assert not memory.positional.applicable and "rotary" in memory.positional.reason
    assert not memory.feed_forward.applicable
    assert suite.task is None
    payload = json.loads(json.dumps(suite.to_dict(), allow_nan=False))
    assert len(payload["scores"]["induction"]) == 30 and len(payload["scores"]["induction"][0]) == 9


def test_memory_probes_on_gqa_heads(model):
    recall = ov_recall(model, (18, 6), n_tokens=64)
    assert recall.n == 64 and 0 <= recall.value <= 1
    assert positional_recall(model, (0, 0)).value is None
