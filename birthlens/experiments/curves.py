"""When does a training curve cross a line? Step detection on (step, value) series.

    first_step_at_least(steps, icl_accuracy, 0.5)      # first eval with accuracy >= 0.5
    within_of_final(steps, bigram_loss, 0.10)          # first eval with loss <= 1.1 x final
    half_final_step(steps, wo2_recall)                 # first eval halfway from start to final

Every function returns the step of the first evaluation that satisfies its condition,
or None when no evaluation does. NaN values (a metric not measurable at that step)
never satisfy a condition. "Final" is the value at the last evaluation: the runs are
short and their curves flat at the end, and the last value is what a reader of the
metrics log sees.
"""

from __future__ import annotations

import math
from typing import Sequence

# Below this rise (final - start) a memory has not formed, so it has no halfway step.
MIN_RISE = 0.1
# Comparisons allow for rounding: 0.2 + 0.5 * (1.0 - 0.2) is 0.6000000000000001.
EPS = 1e-9


def _clean(steps: Sequence[int], values: Sequence[float | None]) -> list[tuple[int, float]]:
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps but {len(values)} values")
    pairs = []
    for step, value in zip(steps, values):
        value = math.nan if value is None else float(value)
        pairs.append((int(step), value))
    return sorted(pairs)


def first_step_at_least(steps: Sequence[int], values: Sequence[float | None], threshold: float) -> int | None:
    """First step whose value is >= ``threshold``."""
    return next((s for s, v in _clean(steps, values) if v >= threshold - EPS), None)


def first_step_at_most(steps: Sequence[int], values: Sequence[float | None], threshold: float) -> int | None:
    """First step whose value is <= ``threshold``."""
    return next((s for s, v in _clean(steps, values) if v <= threshold + EPS), None)


def final_value(steps: Sequence[int], values: Sequence[float | None]) -> float | None:
    """The value at the last step that has one (None if none does)."""
    measured = [v for _, v in _clean(steps, values) if not math.isnan(v)]
    return measured[-1] if measured else None


def within_of_final(steps: Sequence[int], values: Sequence[float | None], fraction: float = 0.10) -> int | None:
    """First step where a decreasing curve (a loss) is within ``fraction`` of its final value.

        within_of_final([0, 10, 20], [4.2, 2.7, 2.5])   # -> 10 (2.7 <= 1.1 * 2.5)
    """
    final = final_value(steps, values)
    if final is None:
        return None
    return first_step_at_most(steps, values, final + fraction * abs(final))


def half_final_step(
    steps: Sequence[int],
    values: Sequence[float | None],
    start: float | None = None,
    min_rise: float = MIN_RISE,
) -> int | None:
    """First step where a rising curve (a recall) is halfway from its start to its final value.

        half_final_step([0, 10, 20, 30], [0.0, 0.2, 0.6, 0.9])   # -> 20 (0.6 >= 0.45)

    ``start`` defaults to the first value: a memory at chance level is "empty", so the
    halfway line is measured from where the curve began, not from zero. None when the
    curve rises by less than ``min_rise`` (the memory never formed).
    """
    pairs = [(s, v) for s, v in _clean(steps, values) if not math.isnan(v)]
    if not pairs:
        return None
    begin = pairs[0][1] if start is None else float(start)
    final = pairs[-1][1]
    if final - begin < min_rise:
        return None
    return next(s for s, v in pairs if v >= begin + 0.5 * (final - begin) - EPS)


def value_at(steps: Sequence[int], values: Sequence[float | None], step: int) -> float | None:
    """The value recorded at ``step`` (None when that step was not evaluated or is NaN)."""
    for s, v in _clean(steps, values):
        if s == step:
            return None if math.isnan(v) else v
    return None
