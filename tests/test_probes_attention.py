"""Attention scores: planted ground truth, TransformerLens agreement, bad input."""

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.head_detector import (
    get_duplicate_token_head_detection_pattern,
    get_induction_head_detection_pattern,
    get_previous_token_head_detection_pattern,
)

from birthlens.errors import BirthlensError
from birthlens.probes import attention_scores, detection_masks, repeated_prompts
from birthlens.probes.planted import planted_induction_model
from birthlens.probes.reference import detect_head_scores, spearman


@pytest.fixture(scope="module")
def planted():
    return planted_induction_model(d_vocab=64, n_ctx=128, n_heads=2)


@pytest.fixture(scope="module")
def random_model():
    cfg = HookedTransformerConfig(
        n_layers=3, n_heads=4, d_model=64, d_head=16, d_vocab=100, n_ctx=128,
        attn_only=True, normalization_type="LN", seed=0,
    )  # fmt: skip
    model = HookedTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.5, generator=torch.Generator().manual_seed(p.numel()))
    return model.eval()


def test_planted_heads_score_high_and_others_low(planted):
    scores = attention_scores(planted, length=30, batch_size=8, seed=1)
    assert scores.prev_token[0, 0] > 0.99
    assert scores.induction[1, 0] > 0.9
    for layer, head in [(0, 1), (1, 0), (1, 1)]:
        assert scores.prev_token[layer, head] < 0.2
    for layer, head in [(0, 0), (0, 1), (1, 1)]:
        assert scores.induction[layer, head] < 0.2
    assert scores.prev_token.top(1)[0][:2] == (0, 0)
    assert scores.induction.top(1)[0][:2] == (1, 0)


def test_masks_match_head_detector_patterns():
    tokens = torch.tensor([[5, 3, 7, 3, 5, 3, 7, 9, 9]])
    masks = detection_masks(tokens)
    expected = {
        "prev_token": get_previous_token_head_detection_pattern(tokens),
        "duplicate_token": get_duplicate_token_head_detection_pattern(tokens),
        "induction": get_induction_head_detection_pattern(tokens),
    }
    for name, pattern in expected.items():
        assert torch.equal(masks[name][0], pattern.bool()), name


def test_scores_match_a_by_hand_computation(random_model):
    tokens = repeated_prompts(random_model, length=10, batch_size=3, bos=None)
    scores = attention_scores(random_model, tokens)
    _, cache = random_model.run_with_cache(tokens)
    pattern = cache["pattern", 2][:, 1]  # layer 2, head 1: (batch, q, k)
    n = tokens.shape[1]
    prev = torch.stack([pattern[:, i, i - 1] for i in range(1, n)], dim=1).mean()
    # Induction: second-copy query i attends to i - 10 + 1; the first copy has no target
    # unless A repeats a token, which this seed avoids for the rows we read.
    assert scores.prev_token[2, 1] == pytest.approx(float(prev), rel=1e-5)
    mask = detection_masks(tokens)["induction"].float()
    rows = mask.any(-1)
    expected = (pattern * mask).sum(-1)[rows].sum() / rows.sum()
    assert scores.induction[2, 1] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("exclude_bos", [False, True])
def test_rank_agreement_with_detect_head(random_model, exclude_bos):
    tokens = repeated_prompts(random_model, length=30, batch_size=4, seed=3, bos=0)
    ours = attention_scores(random_model, tokens, exclude_bos=exclude_bos)
    for name in ("prev_token", "induction", "duplicate_token"):
        theirs = detect_head_scores(random_model, tokens, name, exclude_bos=exclude_bos)
        assert spearman(ours[name].values, theirs) >= 0.9, name


def test_without_exclusion_we_rescale_detect_head_exactly(random_model):
    # Without BOS exclusion our score is TL's times n / (rows with a target), per prompt.
    tokens = repeated_prompts(random_model, length=20, batch_size=1, seed=5, bos=None)
    ours = attention_scores(random_model, tokens).prev_token.values
    theirs = detect_head_scores(random_model, tokens, "prev_token")
    n = tokens.shape[1]
    assert torch.allclose(ours, theirs * n / (n - 1), atol=1e-5)


def test_default_length_fits_small_contexts(planted):
    small = planted_induction_model(d_vocab=16, n_ctx=40)
    scores = attention_scores(small)
    assert scores.seq_len == 40
    assert scores.to_dict()["n_sequences"] == 8


def test_to_dict_and_top_are_plain(planted):
    scores = attention_scores(planted, length=20, batch_size=2)
    d = scores.to_dict()
    assert len(d["induction"]) == 2 and len(d["induction"][0]) == 2
    assert all(isinstance(x, float) for row in d["prev_token"] for x in row)
    layer, head, value = scores.top(1, "prev_token")[0]
    assert (layer, head) == (0, 0) and isinstance(value, float)


def test_bad_input(planted):
    with pytest.raises(BirthlensError, match="longer than the model's context"):
        attention_scores(planted, length=100)
    with pytest.raises(BirthlensError, match="longer than the model's context"):
        attention_scores(planted, tokens=torch.zeros(1, 200, dtype=torch.long))
    with pytest.raises(BirthlensError, match="empty batch"):
        attention_scores(planted, tokens=torch.zeros(0, 10, dtype=torch.long))
    with pytest.raises(BirthlensError, match="empty batch"):
        attention_scores(planted, tokens=[])
    with pytest.raises(BirthlensError, match="need batch_size >= 1"):
        attention_scores(planted, batch_size=0)
    with pytest.raises(BirthlensError, match="no tokenizer"):
        attention_scores(planted, tokens="some text")
    with pytest.raises(BirthlensError, match="token ids must lie"):
        attention_scores(planted, tokens=torch.full((1, 10), 64))
    with pytest.raises(BirthlensError, match="integer ids"):
        attention_scores(planted, tokens=torch.zeros(1, 10))
    with pytest.raises(BirthlensError, match="unknown attention score"):
        attention_scores(planted, length=10, batch_size=1)["nope"]
