"""Pure functions on arrays: classification metrics, calibration, bootstrap CIs, domain
divergence, learning-curve statistics, label-free estimates, verdicts, plot building blocks.

Nothing here knows about experiments: the runs, reports and figures of each experiment kind live
in :mod:`textransfer.experiments`.
"""

from textransfer.evaluation.bootstrap import bootstrap_ci
from textransfer.evaluation.calibration import expected_calibration_error, reliability_bins
from textransfer.evaluation.divergence import proxy_a_distance
from textransfer.evaluation.metrics import classification_metrics, majority_baseline

__all__ = [
    "bootstrap_ci",
    "classification_metrics",
    "expected_calibration_error",
    "majority_baseline",
    "proxy_a_distance",
    "reliability_bins",
]
