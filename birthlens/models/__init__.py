"""Models: the toy HookedTransformer, its trainer and checkpoints, and loading any spec."""

from birthlens.models.toy import ToyConfig, build_toy_model
from birthlens.models.training import PRESETS, TrainConfig, preset, train

__all__ = ["PRESETS", "ToyConfig", "TrainConfig", "build_toy_model", "preset", "train"]
