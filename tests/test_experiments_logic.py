"""Experiments, pure parts: step detection on curves and the verdict rules, on inputs
whose answer is known."""

import math

import pytest

from birthlens.experiments import verdicts as V
from birthlens.experiments.curves import (
    final_value,
    first_step_at_least,
    first_step_at_most,
    half_final_step,
    value_at,
    within_of_final,
)

STEPS = [0, 10, 20, 30, 40]


# ---- curves -------------------------------------------------------------------


def test_half_final_step_is_halfway_from_the_start():
    assert half_final_step(STEPS, [0.0, 0.1, 0.5, 0.9, 1.0]) == 20  # line at 0.5
    # From a chance-level start of 0.2 to 1.0 the line is 0.6, not 0.5.
    assert half_final_step(STEPS, [0.2, 0.2, 0.5, 0.6, 1.0]) == 30
    assert half_final_step(STEPS, [0.2, 0.2, 0.5, 0.6, 1.0], start=0.0) == 20


def test_half_final_step_of_a_memory_that_never_formed_is_none():
    assert half_final_step(STEPS, [0.01, 0.02, 0.03, 0.02, 0.05]) is None
    assert half_final_step([], []) is None
    assert half_final_step(STEPS, [None] * 5) is None


def test_half_final_step_takes_the_first_crossing_and_skips_nan():
    # A spike that falls back still counts: the memory was halfway there at step 10.
    assert half_final_step(STEPS, [0.0, 0.8, 0.1, 0.9, 1.0]) == 10
    assert half_final_step(STEPS, [0.0, math.nan, None, 0.9, 1.0]) == 30


def test_half_final_step_sorts_by_step():
    assert half_final_step([20, 0, 10], [1.0, 0.0, 0.6]) == 10


def test_threshold_steps():
    acc = [0.0, 0.3, 0.55, 0.9, 0.95]
    assert first_step_at_least(STEPS, acc, 0.5) == 20
    assert first_step_at_least(STEPS, acc, 0.99) is None
    loss = [4.2, 3.0, 2.7, 2.55, 2.5]
    assert first_step_at_most(STEPS, loss, 3.0) == 10
    assert within_of_final(STEPS, loss, 0.10) == 20  # 2.7 <= 2.75
    assert final_value(STEPS, [1.0, 2.0, None, None, None]) == 2.0
    assert value_at(STEPS, acc, 30) == 0.9 and value_at(STEPS, acc, 35) is None


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        half_final_step([0, 1], [0.0])


# ---- tally --------------------------------------------------------------------


def test_tally():
    A, C, U = V.AGREES, V.CONTRADICTS, V.UNRESOLVED
    assert V.tally([A, A, A]) == V.HOLDS
    assert V.tally([A, A, U]) == V.CAVEAT
    assert V.tally([A, A, C]) == V.CAVEAT
    assert V.tally([A, C, C]) == V.FAILS
    assert V.tally([A, C]) == V.FAILS  # half contradict
    assert V.tally([U, U]) == V.CAVEAT
    assert V.tally([]) == V.NOT_MEASURED


# ---- claim 1 ------------------------------------------------------------------


def test_global_first():
    rows = lambda pairs: [{"model": "m", "seed": i, "step_bigram": b, "step_icl": c} for i, (b, c) in enumerate(pairs)]  # noqa: E731
    assert V.global_first_verdict(rows([(30, 200), (40, 180), (30, 250)]))[0] == V.HOLDS
    assert V.global_first_verdict(rows([(300, 200), (250, 180), (30, 250)]))[0] == V.FAILS
    assert V.global_first_verdict(rows([(200, 200), (250, 180)]))[0] == V.FAILS  # a tie is not "before"
    verdict, note = V.global_first_verdict(rows([(30, 200), (40, None), (30, 250)]))
    assert verdict == V.CAVEAT and "never reached 0.5" in note and "m s1" in note


# ---- claim 2 ------------------------------------------------------------------


def seeds(*triples):
    return [{"seed": i, "t_wo2": a, "t_wk2": b, "t_wk1": c} for i, (a, b, c) in enumerate(triples)]


def test_top_down_holds_only_with_the_strict_order_in_every_seed():
    assert V.top_down_verdict(seeds((40, 100, 200), (30, 90, 150), (50, 120, 130)))[0] == V.HOLDS


def test_top_down_ties_and_missing_memories_are_a_caveat():
    verdict, note = V.top_down_verdict(seeds((40, 100, 200), (40, 40, 150), (50, 120, 130)))
    assert verdict == V.CAVEAT and "[1]" in note
    assert V.top_down_verdict(seeds((40, 100, 200), (40, 100, None), (50, 120, 130)))[0] == V.CAVEAT


def test_top_down_fails_when_most_seeds_reverse_the_order():
    assert V.top_down_verdict(seeds((200, 100, 40), (150, 90, 30), (50, 120, 130)))[0] == V.FAILS
    # A reversal among the memories that did form is a contradiction even if one is missing.
    assert V.top_down_outcome(100, 40, None) == V.CONTRADICTS


# ---- claim 3 ------------------------------------------------------------------


def test_bag_of_words():
    rows = lambda pairs: [{"seed": i, "entropy_at_wo2": e, "final_entropy": f} for i, (e, f) in enumerate(pairs)]  # noqa: E731
    assert V.bag_of_words_verdict(rows([(0.98, 0.3), (0.95, 0.4), (0.99, 0.2)]))[0] == V.HOLDS
    assert V.bag_of_words_verdict(rows([(0.5, 0.3), (0.6, 0.4), (0.99, 0.2)]))[0] == V.FAILS
    # Near uniform, but attention never sharpened: not a contradiction, not a confirmation.
    assert V.bag_of_words_verdict(rows([(0.98, 0.95), (0.95, 0.4), (0.99, 0.2)]))[0] == V.CAVEAT
    assert V.bag_of_words_verdict(rows([(None, 0.3), (0.95, 0.4)]))[0] == V.CAVEAT


# ---- claim 2b -----------------------------------------------------------------


def test_freezing():
    base = seeds((40, 100, 200), (50, 110, 210))
    good_wk1 = seeds((50, 120, 300), (50, 100, 320))  # W_O^2 within 10 steps of the baseline
    good_wo2 = seeds((120, 160, 220), (110, 150, 230))  # keys after the release at 100
    assert V.freezing_verdict(base, good_wk1, good_wo2, freeze_step=100, tolerance=10)[0] == V.HOLDS
    late_wo2 = seeds((90, 120, 300), (95, 100, 320))
    verdict, note = V.freezing_verdict(base, late_wo2, good_wo2, freeze_step=100, tolerance=10)
    assert verdict == V.FAILS and "2 contradicts" in note
    early_wk1 = seeds((120, 160, 60), (110, 150, 230))  # W_K^1 formed while W_O^2 was frozen
    assert V.freezing_verdict(base, good_wk1, early_wk1, freeze_step=100, tolerance=10)[0] == V.CAVEAT


# ---- claim 4 ------------------------------------------------------------------


def config(label, factor, level, steps, ood):
    return {"label": label, "factor": factor, "level": level, "steps_to_09": steps, "ood_acc": ood}


def test_data_distribution_holds_with_speed_and_generalisation_effects():
    configs = [
        config("k1", "K", "1", [100, 120, 110], [0.9, 0.92, 0.91]),
        config("k5", "K", "5", [300, 320, None], [0.5, 0.55, 0.52]),
    ]
    verdict, note = V.data_distribution_verdict(configs, never=420, min_gap=20)
    assert verdict == V.HOLDS and "K: 1 vs 5" in note


def test_data_distribution_overlapping_seeds_are_no_effect():
    configs = [
        config("k1", "K", "1", [100, 300, 200], [0.9, 0.5, 0.7]),
        config("k5", "K", "5", [150, 250, 220], [0.6, 0.8, 0.75]),
    ]
    assert V.data_distribution_verdict(configs, never=420, min_gap=20)[0] == V.FAILS
    # Speed only: a caveat.
    configs[1]["steps_to_09"] = [None, None, None]
    assert V.data_distribution_verdict(configs, never=420, min_gap=20)[0] == V.CAVEAT


def test_never_reaching_counts_as_slowest():
    a = config("a", "f", "a", [None, None], [0.1, 0.1])
    b = config("b", "f", "b", [380, 390], [0.1, 0.1])
    assert V.speed_effects([a, b], never=420, min_gap=20) == ["f: a vs b"]
    assert V.speed_effects([a, b], never=400, min_gap=20) == []  # 400 vs 385: too close


# ---- claim 5 ------------------------------------------------------------------


def test_pretrained():
    prev = [(2, 1, 0.9), (3, 0, 0.8), (1, 2, 0.7)]
    ind = [(6, 0, 0.8), (7, 1, 0.6), (5, 2, 0.5)]
    assert V.pretrained_verdict(prev, ind)[0] == V.HOLDS
    assert V.pretrained_verdict(prev, [(6, 0, 0.1)])[0] == V.FAILS  # no induction head
    assert V.pretrained_verdict(ind, prev)[0] == V.FAILS  # the order reversed
    assert V.pretrained_verdict([(2, 0, 0.9), (8, 0, 0.8), (9, 0, 0.7)], ind)[0] == V.CAVEAT
    assert V.pretrained_verdict([], [])[0] == V.NOT_MEASURED
