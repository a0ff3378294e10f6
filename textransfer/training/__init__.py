"""The one training loop (the only place that imports accelerate)."""

from textransfer.training.loop import TrainingArgs, TrainingError, TrainResult, train

__all__ = ["TrainResult", "TrainingArgs", "TrainingError", "train"]
