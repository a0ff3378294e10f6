"""A small name -> class registry, shared by encoders, heads, strategies and datasets.

Saved models store registry names, and loading goes back through the same registry, so a name is
the one stable handle on a component (as timm's ``create_model`` and Flair's ``__cls__`` do).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """Raised for a name that no component of the registry's kind is registered under."""


class Registry(Generic[T]):
    """Maps names to factories (usually classes) of one kind of component.

    Example:
        >>> heads = Registry("head")
        >>> @heads.register("linear")
        ... class LinearHead: ...
        >>> heads.names()
        ['linear']
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}
        # Imports the modules that register built-in entries, on first use only, so that
        # `import textransfer` stays cheap.
        self._loader = loader
        self._loaded = loader is None

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            assert self._loader is not None
            self._loader()

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers a factory under ``name``."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            existing = self._entries.get(name)
            if existing is not None and existing is not factory:
                raise ValueError(f"a {self.kind} named {name!r} is already registered")
            self._entries[name] = factory
            # Saved models record this name; keep it on the class for `save`.
            try:
                factory.registry_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return factory

        return deco

    def get(self, name: str) -> Callable[..., T]:
        """Returns the factory registered as ``name``; unknown names list the known ones."""
        self._ensure_loaded()
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a string, got {type(name).__name__}")
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {known}"
            ) from None

    def create(self, name: str, **kwargs: Any) -> T:
        """Builds the component registered as ``name`` with ``kwargs``."""
        factory = self.get(name)
        check_params(factory, kwargs, section=self.kind, name=name)
        return factory(**kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._ensure_loaded()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries


def accepted_params(factory: Callable[..., Any]) -> list[str] | None:
    """Keyword parameters ``factory`` accepts, or None when it takes ``**kwargs``."""
    sig = inspect.signature(factory)
    names = []
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.append(p.name)
    return names


def check_params(factory: Callable[..., Any], kwargs: dict[str, Any], section: str, name: str) -> None:
    """Raises a ValueError naming any key of ``kwargs`` that ``factory`` does not accept."""
    allowed = accepted_params(factory)
    if allowed is None:
        return
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown key {key!r} in section {section!r} ({section} {name!r}).{hint} "
            f"Accepted keys: {', '.join(['name', *allowed])}"
        )
