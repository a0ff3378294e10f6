"""Moved to :mod:`textransfer.experiments.curve.config` and :mod:`textransfer.experiments.layers.config`; kept so old imports work."""

from textransfer.experiments.curve.config import CurveConfig, load_curve_config  # noqa: F401
from textransfer.experiments.layers.config import LayersConfig, load_layers_config  # noqa: F401
