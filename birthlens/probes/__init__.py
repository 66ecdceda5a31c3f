"""Probes: pure functions of (model, data) that work on the toy and on pretrained LLMs alike.

    from birthlens.probes import probe_all, attention_scores, induction_loss, ov_recall
    result = probe_all(model)
    result.top(3)

Modules: ``attention`` (previous-token / induction / duplicate-token scores),
``behaviour`` (induction loss, task metrics, the paper's attention probes),
``memory`` (OV, QK, positional and feed-forward recall), ``composition``
(Q/K/V composition), ``suite`` (``probe_all``), ``planted`` (hand-built models
with known answers).
"""

from birthlens.probes.attention import SCORE_NAMES, AttentionScores, attention_scores, detection_masks, score_attention
from birthlens.probes.behaviour import (
    InductionLoss,
    TaskMetrics,
    bigram_loss,
    copy_losses,
    icl_accuracy,
    icl_loss,
    induction_loss,
    induction_probe,
    per_token_loss,
    prev_token_probe,
    second_copy_loss,
    task_metrics,
)
from birthlens.probes.composition import CompositionScores, composition_scores
from birthlens.probes.heads import HeadScores, check_head, check_heads
from birthlens.probes.memory import Recall, feed_forward_recall, ov_recall, positional_recall, qk_recall, recall_map
from birthlens.probes.prompts import repeated_prompts
from birthlens.probes.suite import MemoryRecall, ProbeSuiteResult, probe_all, strongest_pair

__all__ = [
    "SCORE_NAMES",
    "AttentionScores",
    "CompositionScores",
    "HeadScores",
    "InductionLoss",
    "MemoryRecall",
    "ProbeSuiteResult",
    "Recall",
    "TaskMetrics",
    "attention_scores",
    "bigram_loss",
    "check_head",
    "check_heads",
    "composition_scores",
    "copy_losses",
    "detection_masks",
    "feed_forward_recall",
    "icl_accuracy",
    "icl_loss",
    "induction_loss",
    "induction_probe",
    "ov_recall",
    "per_token_loss",
    "positional_recall",
    "prev_token_probe",
    "probe_all",
    "qk_recall",
    "recall_map",
    "repeated_prompts",
    "score_attention",
    "second_copy_loss",
    "strongest_pair",
    "task_metrics",
]

# Interventions: ablation, activation patching, path patching (issue 5).
from birthlens.probes.ablation import AblationResult, AblationSweep, ablate, ablation_sweep  # noqa: E402
from birthlens.probes.components import Component, parse_components  # noqa: E402
from birthlens.probes.pairs import PromptPair, repeated_pair, task_pair  # noqa: E402
from birthlens.probes.patching import PatchingSweep, PatchResult, patch, patching_sweep  # noqa: E402
from birthlens.probes.path_patching import PathResult, path_patch  # noqa: E402

__all__ += [
    "AblationResult",
    "AblationSweep",
    "Component",
    "PatchResult",
    "PatchingSweep",
    "PathResult",
    "PromptPair",
    "ablate",
    "ablation_sweep",
    "parse_components",
    "patch",
    "patching_sweep",
    "path_patch",
    "repeated_pair",
    "task_pair",
]
