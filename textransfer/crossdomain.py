"""Moved to :mod:`textransfer.experiments.crossdomain`; kept so old imports work."""

from textransfer.experiments._kernel import FeatureStore  # noqa: F401
from textransfer.experiments.crossdomain.run import (  # noqa: F401,E501
    CrossDomainConfig,
    CrossDomainResult,
    CrossDomainRun,
    load_crossdomain_config,
    load_domains,
    run_crossdomain,
)

Experiment = CrossDomainRun  # its old name
