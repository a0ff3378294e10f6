"""Metrics and reports."""

from textransfer.evaluation.metrics import classification_metrics, majority_baseline

__all__ = ["classification_metrics", "majority_baseline"]
