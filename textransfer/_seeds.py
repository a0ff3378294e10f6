"""The seed type of configs: a whole number numpy, torch and scikit-learn all take (0 .. 2**32 - 1).

A negative seed used to pass config validation and fail deep inside numpy, with a message that
blamed the data ("domain 'movies' is too small ... expected non-negative integer").
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def check_seed(v: int) -> int:
    """``v`` when numpy, torch and scikit-learn all take it as a seed; else a ValueError saying the range."""
    if isinstance(v, bool) or not 0 <= v <= 2**32 - 1:
        raise ValueError(f"a seed must be a whole number from 0 to 4294967295, got {v!r}")
    return v


Seed = Annotated[int, AfterValidator(check_seed)]
