"""Character-level corpus statistics: vocabulary, unigram and bigram counts.

The table for tiny-Shakespeare ships with the package; build one from any text file with::

    python -m birthlens.datasets.corpus my_corpus.txt my_stats.json

and load it with ``CorpusStats.from_json("my_stats.json")``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from birthlens.errors import BirthlensError

DEFAULT_TABLE = "tinyshakespeare_stats.json"


@dataclass(frozen=True)
class CorpusStats:
    """Vocabulary plus unigram and bigram counts of a character corpus.

    ``vocab[i]`` is the character of token i (tokens are ordered by character code);
    ``unigram[i]`` counts token i; ``bigram[i, j]`` counts token i followed by token j.
    """

    vocab: tuple[str, ...]
    unigram: torch.Tensor  # (V,) int64
    bigram: torch.Tensor  # (V, V) int64

    @property
    def size(self) -> int:
        return len(self.vocab)

    def unigram_probs(self) -> torch.Tensor:
        """pi_u, the marginal distribution of tokens."""
        counts = self.unigram.double()
        return counts / counts.sum()

    def bigram_probs(self) -> torch.Tensor:
        """pi_b(j | i) as a (V, V) row-stochastic matrix.

        A token never followed by anything (possible for the corpus's last character)
        gets the unigram distribution as its row, so every row is a distribution.
        """
        counts = self.bigram.double()
        rows = counts.sum(dim=1, keepdim=True)
        probs = torch.where(rows > 0, counts / rows.clamp(min=1), self.unigram_probs())
        return probs

    def most_frequent(self, k: int) -> list[int]:
        """Token ids of the k most frequent characters (ties broken by token id)."""
        order = sorted(range(self.size), key=lambda i: (-int(self.unigram[i]), i))
        return order[:k]

    def encode(self, text: str) -> list[int]:
        index = {ch: i for i, ch in enumerate(self.vocab)}
        unknown = sorted({ch for ch in text if ch not in index})
        if unknown:
            raise BirthlensError(f"characters not in the vocabulary: {unknown!r}")
        return [index[ch] for ch in text]

    def decode(self, tokens) -> str:
        return "".join(self.vocab[int(t)] for t in tokens)

    @classmethod
    def from_text(cls, text: str) -> "CorpusStats":
        if len(text) < 2:
            raise BirthlensError("the corpus needs at least two characters")
        vocab = tuple(sorted(set(text)))
        index = {ch: i for i, ch in enumerate(vocab)}
        ids = torch.tensor([index[ch] for ch in text], dtype=torch.int64)
        size = len(vocab)
        unigram = torch.bincount(ids, minlength=size)
        bigram = torch.bincount(ids[:-1] * size + ids[1:], minlength=size * size).view(size, size)
        return cls(vocab, unigram, bigram)

    def to_json(self, path: str | Path) -> None:
        payload = {
            "vocab": list(self.vocab),
            "unigram": self.unigram.tolist(),
            "bigram": self.bigram.tolist(),
        }
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a shared table should be readable
        os.replace(tmp, path)

    @classmethod
    def from_json(cls, path: str | Path) -> "CorpusStats":
        try:
            payload = json.loads(Path(path).read_text())
            vocab = tuple(payload["vocab"])
            unigram = torch.tensor(payload["unigram"], dtype=torch.int64)
            bigram = torch.tensor(payload["bigram"], dtype=torch.int64)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BirthlensError(f"cannot read corpus statistics from {path}: {exc}") from exc
        if unigram.shape != (len(vocab),) or bigram.shape != (len(vocab), len(vocab)):
            raise BirthlensError(f"corpus statistics in {path} have inconsistent shapes")
        return cls(vocab, unigram, bigram)


_default: CorpusStats | None = None


def default_stats() -> CorpusStats:
    """The shipped tiny-Shakespeare table (65 characters), loaded once."""
    global _default
    if _default is None:
        with resources.as_file(resources.files("birthlens.datasets") / DEFAULT_TABLE) as path:
            _default = CorpusStats.from_json(path)
    return _default


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Build a character vocabulary with unigram and bigram counts from a text file."
    )
    parser.add_argument("text_file", help="any UTF-8 text file")
    parser.add_argument("out_json", help="where to write the table (JSON, counts only)")
    args = parser.parse_args(argv)
    stats = CorpusStats.from_text(Path(args.text_file).read_text(encoding="utf-8"))
    stats.to_json(args.out_json)
    print(f"{args.out_json}: {stats.size} characters, {int(stats.unigram.sum())} tokens")


if __name__ == "__main__":
    main()
