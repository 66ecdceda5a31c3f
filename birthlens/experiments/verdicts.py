"""Verdict logic: from per-seed measurements to holds / does not hold / holds with caveat.

    verdict, note = top_down_verdict([{"seed": 0, "t_wo2": 40, "t_wk2": 120, "t_wk1": 200}])
    # ("holds", "order W_O^2 < W_K^2 < W_K^1 in 1 of 1 seeds")

Pure functions of plain numbers, so each rule can be tested on inputs whose answer is
known. Every rule first sorts each seed (or configuration) into agrees / contradicts /
unresolved, then ``tally`` decides: all agree -> holds; at least half contradict ->
does not hold; anything else -> holds with caveat (the note says what is unresolved).
The thresholds are fixed here, before any run, and are never adjusted to a result.
"""

from __future__ import annotations

import math
from statistics import mean
from typing import Sequence

HOLDS = "holds"
FAILS = "does not hold"
CAVEAT = "holds with caveat"
NOT_MEASURED = "not measured"
VERDICTS = (HOLDS, FAILS, CAVEAT, NOT_MEASURED)

AGREES, CONTRADICTS, UNRESOLVED = "agrees", "contradicts", "unresolved"

# Claim 3: attention counts as near uniform when its entropy is at least this fraction of
# the uniform entropy, and as sharpened when it later fell by at least SHARPENING.
NEAR_UNIFORM = 0.9
SHARPENING = 0.2
# Claim 4: generalisation differs when mean out-of-distribution accuracies differ by this.
OOD_DIFFERENCE = 0.1
# Claim 5: a head "exists" when its attention score reaches this.
STRONG_HEAD = 0.3


def tally(outcomes: Sequence[str]) -> str:
    """holds if every outcome agrees; does not hold if at least half contradict; else caveat."""
    if not outcomes:
        return NOT_MEASURED
    n = len(outcomes)
    contra = sum(o == CONTRADICTS for o in outcomes)
    if all(o == AGREES for o in outcomes):
        return HOLDS
    if contra and 2 * contra >= n:
        return FAILS
    return CAVEAT


def _count(outcomes: Sequence[str]) -> str:
    parts = [f"{sum(o == kind for o in outcomes)} {kind}" for kind in (AGREES, CONTRADICTS, UNRESOLVED)]
    return ", ".join(part for part in parts if not part.startswith("0 "))


# ---- claim 1: global statistics before in-context ------------------------------


def global_first_outcome(step_bigram: int | None, step_icl: int | None) -> str:
    """Bigram loss near its final value strictly before in-context accuracy reaches 0.5?"""
    if step_icl is None:
        return UNRESOLVED  # in-context learning never happened: the order is not observed
    if step_bigram is not None and step_bigram < step_icl:
        return AGREES
    return CONTRADICTS


def global_first_verdict(per_seed: Sequence[dict]) -> tuple[str, str]:
    """``per_seed``: rows with ``model``, ``seed``, ``step_bigram``, ``step_icl``."""
    outcomes = [global_first_outcome(r["step_bigram"], r["step_icl"]) for r in per_seed]
    note = f"{_count(outcomes)} (runs: models x seeds)"
    unreached = [f"{r['model']} s{r['seed']}" for r, o in zip(per_seed, outcomes) if o == UNRESOLVED]
    if unreached:
        note += f"; in-context accuracy never reached 0.5 in {', '.join(unreached)}"
    reversed_ = [f"{r['model']} s{r['seed']}" for r, o in zip(per_seed, outcomes) if o == CONTRADICTS]
    if reversed_:
        note += f"; in-context accuracy reached 0.5 first (or at the same step) in {', '.join(reversed_)}"
    return tally(outcomes), note


# ---- claim 2: top-down order of the three memories ----------------------------


def top_down_outcome(t_wo2: int | None, t_wk2: int | None, t_wk1: int | None) -> str:
    """Strictly W_O^2 < W_K^2 < W_K^1 (halfway steps)? A tie, or a memory that never
    formed, leaves the order unresolved; any strict reversal contradicts."""
    times = (t_wo2, t_wk2, t_wk1)
    known = [t for t in times if t is not None]
    if any(a > b for i, a in enumerate(known) for b in known[i + 1:]):
        return CONTRADICTS
    if None in times or len(set(times)) < 3:
        return UNRESOLVED
    return AGREES


def top_down_verdict(per_seed: Sequence[dict]) -> tuple[str, str]:
    """``per_seed``: rows with ``seed``, ``t_wo2``, ``t_wk2``, ``t_wk1`` (None = never formed)."""
    outcomes = [top_down_outcome(r["t_wo2"], r["t_wk2"], r["t_wk1"]) for r in per_seed]
    note = f"order W_O^2 < W_K^2 < W_K^1: {_count(outcomes)} of {len(outcomes)} seeds"
    ties = [r["seed"] for r, o in zip(per_seed, outcomes) if o == UNRESOLVED]
    if ties:
        note += f"; unresolved (a tie at evaluation granularity or a memory that never formed) in seeds {ties}"
    return tally(outcomes), note


# ---- claim 3: output memory while attention is near uniform -------------------


def bag_of_words_outcome(entropy_at_wo2: float | None, final_entropy: float | None) -> str:
    """Layer-2 attention near uniform when W_O^2 is halfway formed, and sharper at the end?"""
    if entropy_at_wo2 is None or final_entropy is None or math.isnan(entropy_at_wo2):
        return UNRESOLVED
    if entropy_at_wo2 < NEAR_UNIFORM:
        return CONTRADICTS
    if final_entropy <= entropy_at_wo2 - SHARPENING:
        return AGREES
    return UNRESOLVED  # the memory formed under uniform attention, but attention never sharpened


def bag_of_words_verdict(per_seed: Sequence[dict]) -> tuple[str, str]:
    """``per_seed``: rows with ``seed``, ``entropy_at_wo2`` and ``final_entropy`` (normalised)."""
    outcomes = [bag_of_words_outcome(r["entropy_at_wo2"], r["final_entropy"]) for r in per_seed]
    note = (f"near uniform = normalised entropy >= {NEAR_UNIFORM}, sharpened = a later drop of >= {SHARPENING}: "
            f"{_count(outcomes)} of {len(outcomes)} seeds")
    return tally(outcomes), note


# ---- claim 2b: freezing --------------------------------------------------------


def freezing_outcomes(
    baseline: Sequence[dict],
    frozen_wk1: Sequence[dict],
    frozen_wo2: Sequence[dict],
    freeze_step: int,
    tolerance: int,
) -> dict[str, list[str]]:
    """Two predictions of the top-down view, per seed (rows as for ``top_down_verdict``):

    - ``wk1_frozen``: with W_K^1 frozen, W_O^2 still forms on time (its halfway step is at
      most ``tolerance`` steps later than in the baseline run of the same seed);
    - ``wo2_frozen``: with W_O^2 frozen until ``freeze_step``, neither key memory reaches
      its halfway point before W_O^2 is released.
    """
    base = {r["seed"]: r for r in baseline}
    wk1 = []
    for r in frozen_wk1:
        b = base.get(r["seed"])
        if b is None or b["t_wo2"] is None or r["t_wo2"] is None:
            wk1.append(UNRESOLVED)
        else:
            wk1.append(AGREES if r["t_wo2"] <= b["t_wo2"] + tolerance else CONTRADICTS)
    wo2 = []
    for r in frozen_wo2:
        keys = [r["t_wk2"], r["t_wk1"]]
        if any(t is not None and t <= freeze_step for t in keys):
            wo2.append(CONTRADICTS)
        else:
            wo2.append(AGREES if None not in keys else UNRESOLVED)
    return {"wk1_frozen": wk1, "wo2_frozen": wo2}


def freezing_verdict(baseline, frozen_wk1, frozen_wo2, freeze_step: int, tolerance: int) -> tuple[str, str]:
    outcomes = freezing_outcomes(baseline, frozen_wk1, frozen_wo2, freeze_step, tolerance)
    note = (f"W_K^1 frozen, W_O^2 on time (+{tolerance} steps): {_count(outcomes['wk1_frozen'])}; "
            f"W_O^2 frozen to step {freeze_step}, no key memory halfway before release: {_count(outcomes['wo2_frozen'])} "
            "(W_K^2 gets an exactly zero gradient while W_O^2 = 0, so only W_K^1's wait is informative)")
    return tally(outcomes["wk1_frozen"] + outcomes["wo2_frozen"]), note


# ---- claim 4: the data distribution matters ------------------------------------


def _censored(steps: Sequence[int | None], never: int) -> list[int]:
    return [never if s is None else s for s in steps]


def separated(a: Sequence[float], b: Sequence[float], min_gap: float) -> bool:
    """Seed ranges that do not overlap and means at least ``min_gap`` apart."""
    if not a or not b:
        return False
    disjoint = max(a) < min(b) or max(b) < min(a)
    return disjoint and abs(mean(a) - mean(b)) >= min_gap


def speed_effects(configs: Sequence[dict], never: int, min_gap: int) -> list[str]:
    """Factors whose levels change the steps to accuracy 0.9 beyond the seed spread.

    ``configs``: rows with ``factor``, ``level``, ``steps_to_09`` (per seed, None = never,
    counted as ``never``). A configuration may appear under several factors (the base one).
    """
    found = []
    for factor in dict.fromkeys(c["factor"] for c in configs):
        levels = [c for c in configs if c["factor"] == factor]
        pairs = [(a, b) for i, a in enumerate(levels) for b in levels[i + 1:]]
        for a, b in pairs:
            if separated(_censored(a["steps_to_09"], never), _censored(b["steps_to_09"], never), min_gap):
                found.append(f"{factor}: {a['level']} vs {b['level']}")
    return found


def ood_effects(configs: Sequence[dict]) -> list[str]:
    """Pairs of configurations whose out-of-distribution accuracies differ beyond the seed spread."""
    unique = list({c["label"]: c for c in configs}.values())
    found = []
    for i, a in enumerate(unique):
        for b in unique[i + 1:]:
            xa = [x for x in a["ood_acc"] if x is not None]
            xb = [x for x in b["ood_acc"] if x is not None]
            if separated(xa, xb, OOD_DIFFERENCE):
                found.append(f"{a['label']} vs {b['label']}")
    return found


def data_distribution_verdict(configs: Sequence[dict], never: int, min_gap: int) -> tuple[str, str]:
    """holds if the data changes both the speed and the generalisation; caveat if one; else not."""
    speed = speed_effects(configs, never, min_gap)
    ood = ood_effects(configs)
    if not configs:
        return NOT_MEASURED, "no runs"
    verdict = HOLDS if speed and ood else CAVEAT if speed or ood else FAILS
    note = (f"speed differs beyond seed spread for {'; '.join(speed) if speed else 'no factor'}; "
            f"out-of-distribution accuracy differs (>= {OOD_DIFFERENCE}) for "
            f"{len(ood)} pair(s) of configurations{': ' + '; '.join(ood[:4]) if ood else ''}")
    return verdict, note


# ---- claim 5: previous-token and induction heads in a pretrained model -----------


def pretrained_verdict(prev_top: Sequence[tuple], ind_top: Sequence[tuple]) -> tuple[str, str]:
    """``prev_top`` / ``ind_top``: the strongest heads of each kind as (layer, head, score),
    best first. Holds when both kinds exist (score >= STRONG_HEAD), every strong top
    induction head has a strong previous-token head in an earlier layer (what K-composition
    needs), and the top previous-token heads sit lower than the top induction heads
    (median layer); caveat when only one of the last two is true."""
    if not prev_top or not ind_top:
        return NOT_MEASURED, "no heads scored"
    prev_best, ind_best = prev_top[0][2], ind_top[0][2]
    if prev_best < STRONG_HEAD or ind_best < STRONG_HEAD:
        return FAILS, f"best previous-token score {prev_best:.2f}, best induction score {ind_best:.2f} (need >= {STRONG_HEAD})"
    strong_prev = [layer for layer, _, score in prev_top if score >= STRONG_HEAD]
    strong_ind = [layer for layer, _, score in ind_top if score >= STRONG_HEAD]
    fed = all(any(p < layer for p in strong_prev) for layer in strong_ind)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    lower = median([h[0] for h in prev_top]) < median([h[0] for h in ind_top])
    note = (f"median layer of the top {len(prev_top)} previous-token heads {median([h[0] for h in prev_top])}, "
            f"of the top {len(ind_top)} induction heads {median([h[0] for h in ind_top])}; every strong top induction head "
            f"{'has' if fed else 'does not have'} a strong previous-token head below it")
    verdict = HOLDS if fed and lower else CAVEAT if fed or lower else FAILS
    return verdict, note
