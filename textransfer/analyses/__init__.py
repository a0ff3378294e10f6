"""Moved to :mod:`textransfer.experiments.curve` and :mod:`textransfer.experiments.layers`; kept so old imports work."""

from textransfer.experiments.curve.config import CurveConfig, load_curve_config  # noqa: F401
from textransfer.experiments.curve.run import CurveResult, CurveRun, run_curve  # noqa: F401
from textransfer.experiments.layers.config import LayersConfig, load_layers_config  # noqa: F401
from textransfer.experiments.layers.run import (  # noqa: F401
    BottomFrozenFinetune,
    LayersResult,
    LayersRun,
    run_layers,
)
