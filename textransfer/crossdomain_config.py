"""Moved to :mod:`textransfer.experiments.crossdomain.config`; kept so old imports work."""

from textransfer.experiments.crossdomain.config import CrossDomainConfig, load_crossdomain_config  # noqa: F401
