"""Training: the one loop (with its set-up, the only place that imports accelerate), its settings, freezing specs, checkpoints."""

from textransfer.training.args import TrainingArgs
from textransfer.training.checkpoint import CheckpointError
from textransfer.training.freezing import FreezePlan, FreezeSpec
from textransfer.training.loop import TrainResult, train
from textransfer.training.optim import TrainingError

__all__ = ["CheckpointError", "FreezePlan", "FreezeSpec", "TrainResult", "TrainingArgs", "TrainingError", "train"]
