"""Registry of unlearning methods. ``get_method(name)`` raises a clear error listing the valid names."""

from __future__ import annotations

from .base import Method, Outputs, RunEnv

_REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"method name {cls.name!r} is empty or registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    _load_builtins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown method {name!r}; valid methods: {', '.join(list_methods())}")
    return _REGISTRY[name]


def list_methods() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    # Imported lazily so that each module registers itself once, whatever the import order.
    import importlib

    for module in ("prompt", "zeroshot", "lpp", "clipfit", "bbf", "gate", "kvw"):
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{module}":
                raise


__all__ = ["Method", "Outputs", "RunEnv", "get_method", "list_methods", "register"]
