"""Moved to :mod:`textransfer.experiments.layers.run`; kept so old imports work."""

from textransfer.experiments.layers.run import (  # noqa: F401
    BottomFrozenFinetune,
    LayersResult,
    LayersRun,
    run_layers,
)
