"""Moved to :mod:`textransfer.experiments.curve.run`; kept so old imports work."""

from textransfer.experiments.curve.run import CurveResult, CurveRun, run_curve  # noqa: F401
