"""Token batches: the synthetic bigram-trigger task, repeated random sequences, corpus statistics."""

from birthlens.datasets.bigram_task import Batch, BigramTask, TaskConfig, occurrence_counts
from birthlens.datasets.corpus import CorpusStats, default_stats
from birthlens.datasets.repeated import repeated_tokens

__all__ = [
    "Batch",
    "BigramTask",
    "CorpusStats",
    "TaskConfig",
    "default_stats",
    "occurrence_counts",
    "repeated_tokens",
]
