"""Range checks of strategy settings, one message shape for all: ``"<strategy>: <key> must be
...", got <value>``. ``bool`` is refused where a number is expected (``True`` is an int in Python).
"""

from __future__ import annotations

import numbers
from typing import Any, Literal, overload


def _or_null(allow_none: bool, none_means: str) -> str:
    if not allow_none:
        return ""
    return f" (or null for {none_means})" if none_means else " (or null)"


@overload
def integer(value: Any, key: str, strategy: str, *, minimum: int = 1, maximum: int | None = None,
            allow_none: Literal[False] = False, none_means: str = "") -> int: ...
@overload
def integer(value: Any, key: str, strategy: str, *, minimum: int = 1, maximum: int | None = None,
            allow_none: bool, none_means: str = "") -> int | None: ...
def integer(value: Any, key: str, strategy: str, *, minimum: int = 1, maximum: int | None = None,
            allow_none: bool = False, none_means: str = "") -> int | None:
    """``value`` as an int from ``minimum`` (to ``maximum``); None passes with ``allow_none``.

    Raises:
        ValueError: e.g. ``"dapt: mlm_steps must be an integer >= 1 (or null), got 0"``.
    """
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum
            or (maximum is not None and int(value) > maximum)):
        span = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ValueError(f"{strategy}: {key} must be an integer {span}{_or_null(allow_none, none_means)}, got {value!r}")
    return int(value)


@overload
def number(value: Any, key: str, strategy: str, *, low: float = 0.0, high: float | None = None,
           low_closed: bool = False, high_closed: bool = True, allow_none: Literal[False] = False,
           hint: str = "", noun: str = "a number ") -> float: ...
@overload
def number(value: Any, key: str, strategy: str, *, low: float = 0.0, high: float | None = None,
           low_closed: bool = False, high_closed: bool = True, allow_none: bool, hint: str = "",
           noun: str = "a number ") -> float | None: ...
def number(value: Any, key: str, strategy: str, *, low: float = 0.0, high: float | None = None,
           low_closed: bool = False, high_closed: bool = True, allow_none: bool = False,
           hint: str = "", noun: str = "a number ") -> float | None:
    """``value`` as a float in the interval from ``low`` to ``high`` (None: unbounded), each end
    open or closed; None passes with ``allow_none``. ``hint`` follows the interval in the message,
    ``noun`` precedes it (``""``: "must be in [0, 1)").

    Raises:
        ValueError: e.g. ``"self_train: keep_fraction must be a number in (0, 1], got 0"``.
    """
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        above = value >= low if low_closed else value > low
        below = high is None or (value <= high if high_closed else value < high)
        ok = above and below
    if not ok:
        if high is None:
            span = f"{'>=' if low_closed else '>'} {low:g}"
        else:
            span = f"in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
        raise ValueError(f"{strategy}: {key} must be {noun}{span}{hint}{_or_null(allow_none, '')}, got {value!r}")
    return float(value)
