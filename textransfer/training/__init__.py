"""The one training loop (the only place that imports accelerate), freezing specs, checkpoints."""

from textransfer.training.checkpoint import CheckpointError
from textransfer.training.freezing import FreezePlan, FreezeSpec
from textransfer.training.loop import TrainingArgs, TrainingError, TrainResult, train

__all__ = ["CheckpointError", "FreezePlan", "FreezeSpec", "TrainResult", "TrainingArgs", "TrainingError", "train"]
