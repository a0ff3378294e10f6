"""Moved to :mod:`textransfer.experiments.train` (run) and :mod:`textransfer.experiments._kernel`; kept so old imports work."""

from textransfer.experiments._kernel import SharedEncoders, build_components, is_main_process  # noqa: F401
from textransfer.experiments.train.run import (  # noqa: F401
    RunResult,
    Splits,
    evaluate,
    load_splits,
    run,
    summary_table,
)
