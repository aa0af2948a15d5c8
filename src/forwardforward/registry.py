"""Name-to-component lookup shared by the registries of goodness functions and objectives."""

from __future__ import annotations

from typing import Mapping, TypeVar

from .errors import UsageError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], kind: str, name: str) -> T:
    """Return `registry[name]`.

    Raises:
        UsageError: `name` is not registered; the message lists the registered names of `kind`.
    """
    try:
        return registry[name]
    except KeyError:
        raise UsageError(f"unknown {kind} {name!r}; choose one of {', '.join(sorted(registry))}") from None
