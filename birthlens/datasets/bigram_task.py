"""The paper's synthetic task: character bigrams with in-context trigger -> output pairs.

    task = BigramTask(TaskConfig(k=5, fixed_triggers=True))
    batch = task.sample(512, seed=0)
    batch.tokens      # (B, T+1) int64
    batch.occurrence  # (B, T+1): how often tokens[b, t] has been a trigger so far (0 = not one)

Each sequence draws K triggers q_k and an output o_k per trigger. z_1 ~ pi_u; then
z_{t+1} = o_k when z_t = q_k, else z_{t+1} ~ pi_b(. | z_t). The target tokens[b, t+1]
is fixed by context exactly where occurrence[b, t] >= 2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch

from birthlens.datasets.corpus import CorpusStats, default_stats
from birthlens.errors import BirthlensError

OutputDist = Literal["uniform", "bigram", "uniform_excluding_trigger"]
OUTPUT_DISTS: tuple[str, ...] = ("uniform", "bigram", "uniform_excluding_trigger")
Split = Literal["all", "train", "test"]

# Which tokens are outputs at train and at test time in the out-of-distribution
# split is fixed by this seed, so every run of every user sees the same split.
OOD_SPLIT_SEED = 1234
OOD_TRAIN_FRACTION = 0.75


@dataclass(frozen=True)
class TaskConfig:
    """Options of the bigram-trigger task (JSON-ready with ``asdict``)."""

    k: int = 5
    fixed_triggers: bool = True
    output_dist: str = "uniform"
    seq_len: int = 256
    ood_split: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Batch:
    """One batch of sequences. ``tokens`` holds T+1 tokens: inputs are the first T."""

    tokens: torch.Tensor  # (B, T+1) int64
    occurrence: torch.Tensor  # (B, T+1) int64
    triggers: torch.Tensor  # (B, K) int64
    outputs: torch.Tensor  # (B, K) int64

    @property
    def inputs(self) -> torch.Tensor:
        return self.tokens[:, :-1]

    @property
    def targets(self) -> torch.Tensor:
        return self.tokens[:, 1:]

    @property
    def icl_mask(self) -> torch.Tensor:
        """Targets fixed by context: outputs of second-or-later trigger occurrences."""
        return self.occurrence[:, :-1] >= 2

    @property
    def bigram_mask(self) -> torch.Tensor:
        """Targets drawn from the bigram statistics (the input token is no trigger)."""
        return self.occurrence[:, :-1] == 0

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device) for t in (self.tokens, self.occurrence, self.triggers, self.outputs)))


class BigramTask:
    """Sampler of the bigram-trigger task over a character corpus (tiny-Shakespeare by default)."""

    def __init__(self, config: TaskConfig = TaskConfig(), stats: CorpusStats | None = None):
        self.config = config
        self.stats = stats if stats is not None else default_stats()
        self._check(config)
        self.vocab_size = self.stats.size
        self.unigram = self.stats.unigram_probs()
        self.bigram = self.stats.bigram_probs()
        self._alias_prob, self._alias = alias_tables(self.bigram)
        self.fixed_trigger_ids = torch.tensor(self.stats.most_frequent(config.k), dtype=torch.int64)
        self.train_outputs, self.test_outputs = self._ood_split()

    def _check(self, config: TaskConfig) -> None:
        size = self.stats.size
        if not 1 <= config.k <= size:
            raise BirthlensError(f"k={config.k}: the number of triggers must be between 1 and the vocabulary size {size}")
        if config.output_dist not in OUTPUT_DISTS:
            raise BirthlensError(f"unknown output distribution {config.output_dist!r}; choose one of {', '.join(OUTPUT_DISTS)}")
        if config.seq_len < 1:
            raise BirthlensError(f"seq_len={config.seq_len}: the sequence length must be at least 1")

    def _ood_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(OOD_SPLIT_SEED)
        order = torch.randperm(self.stats.size, generator=generator)
        n_train = round(OOD_TRAIN_FRACTION * self.stats.size)
        return order[:n_train].sort().values, order[n_train:].sort().values

    def allowed_outputs(self, split: Split) -> torch.Tensor:
        """(V,) bool mask of the tokens that may be drawn as outputs for ``split``."""
        mask = torch.zeros(self.stats.size, dtype=torch.bool)
        if split == "all" or not self.config.ood_split:
            mask[:] = True
        elif split == "train":
            mask[self.train_outputs] = True
        elif split == "test":
            mask[self.test_outputs] = True
        else:
            raise BirthlensError(f"unknown split {split!r}; choose all, train or test")
        return mask

    def sample(self, batch_size: int, seed: int = 0, split: Split = "all") -> Batch:
        """Draw ``batch_size`` sequences of T+1 tokens; the same seed gives the same batch.

        ``split`` selects the output tokens when the config has ``ood_split``: "train"
        (75% of the vocabulary), "test" (the other 25%) or "all".
        """
        if batch_size < 1:
            raise BirthlensError(f"batch_size={batch_size}: need at least one sequence")
        cfg = self.config
        gen = torch.Generator().manual_seed(int(seed))
        triggers = self._draw_triggers(batch_size, gen)
        outputs = self._draw_outputs(triggers, split, gen)

        length = cfg.seq_len + 1
        size = self.vocab_size
        # All randomness up front, time-major so each step's slice is contiguous.
        first = draw(self.unigram.expand(batch_size, -1), gen)
        columns = torch.randint(0, size, (length, batch_size), generator=gen)
        coins = torch.rand(length, batch_size, generator=gen, dtype=torch.float64)
        steps = torch.empty(length, batch_size, dtype=torch.int64)
        steps[0] = first
        # forced[b, v] is the output of trigger v in sequence b, or -1 when v is no trigger.
        forced = torch.full((batch_size, size), -1, dtype=torch.int64)
        forced.scatter_(1, triggers, outputs)
        forced_flat = forced.view(-1)
        row_offsets = torch.arange(batch_size) * size
        alias_prob, alias = self._alias_prob.view(-1), self._alias.view(-1)
        for t in range(cfg.seq_len):
            prev = steps[t]
            # Alias method: an O(1) draw from pi_b(. | prev) per sequence.
            cell = prev * size + columns[t + 1]
            sampled = torch.where(coins[t + 1] < alias_prob[cell], columns[t + 1], alias[cell])
            out = forced_flat[row_offsets + prev]
            steps[t + 1] = torch.where(out >= 0, out, sampled)
        tokens = steps.t().contiguous()

        return Batch(tokens, occurrence_counts(tokens, triggers), triggers, outputs)

    def _draw_triggers(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        if self.config.fixed_triggers:
            return self.fixed_trigger_ids.expand(batch_size, -1).clone()
        weights = self.unigram.float().expand(batch_size, -1)
        return torch.multinomial(weights, self.config.k, replacement=False, generator=gen)

    def _draw_outputs(self, triggers: torch.Tensor, split: Split, gen: torch.Generator) -> torch.Tensor:
        batch_size, k = triggers.shape
        size = self.stats.size
        allowed = self.allowed_outputs(split).double()
        if self.config.output_dist == "bigram":
            weights = self.bigram[triggers] * allowed  # (B, K, V)
        else:
            weights = allowed.expand(batch_size, k, size).clone()
            if self.config.output_dist == "uniform_excluding_trigger":
                weights.scatter_(2, triggers.unsqueeze(2), 0.0)
        empty = weights.sum(dim=2) == 0
        if empty.any():
            # Only possible for bigram outputs when a trigger is never followed by an allowed token.
            weights[empty] = allowed
        return draw(weights, gen)


def draw(weights: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One index per row of ``weights`` (..., V), with probability proportional to the weights."""
    cumulative = weights.double().cumsum(dim=-1)
    # Normalising by the last entry makes each row end at exactly 1.0, so u < 1 never
    # lands past the last index with non-zero weight.
    cdf = (cumulative / cumulative[..., -1:]).contiguous()
    u = torch.rand(*weights.shape[:-1], 1, generator=gen, dtype=torch.float64)
    return torch.searchsorted(cdf, u, right=True).squeeze(-1)


def occurrence_counts(tokens: torch.Tensor, triggers: torch.Tensor) -> torch.Tensor:
    """(B, L) count of how often tokens[b, t] has appeared as a trigger up to t (0 if no trigger)."""
    is_trigger = (tokens.unsqueeze(2) == triggers.unsqueeze(1)).int()  # (B, L, K)
    running = is_trigger.cumsum(dim=1, dtype=torch.int32)
    return (running * is_trigger).sum(dim=2, dtype=torch.int64)


def alias_tables(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Walker/Vose alias tables for each row of a (R, V) row-stochastic matrix.

    Drawing column c uniformly and a coin u, the sample is c when u < prob[r, c], else
    alias[r, c]; this gives exactly the row's distribution with two lookups per draw.
    """
    rows, size = probs.shape
    prob = torch.zeros(rows, size, dtype=torch.float64)
    alias = torch.zeros(rows, size, dtype=torch.int64)
    for r in range(rows):
        scaled = (probs[r].double() * size / probs[r].double().sum()).tolist()
        small = [i for i, p in enumerate(scaled) if p < 1.0]
        large = [i for i, p in enumerate(scaled) if p >= 1.0]
        while small and large:
            low, high = small.pop(), large.pop()
            prob[r, low] = scaled[low]
            alias[r, low] = high
            scaled[high] -= 1.0 - scaled[low]
            (small if scaled[high] < 1.0 else large).append(high)
        for i in large + small:  # leftovers are 1 up to rounding
            prob[r, i] = 1.0
            alias[r, i] = i
    return prob, alias
