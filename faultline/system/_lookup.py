"""Finding a system profile by the name a scenario gives (``system: payments``).

Two ways, so that the engine never imports a system itself:

- an installed package declares it under the ``faultline.systems`` entry-point group
  (``payments = "payments.drill:PROFILE"`` in this repository's pyproject.toml);
- a scenario names a module path, ``system: mycompany.drills:PROFILE`` (the module must
  be importable: installed, or on ``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from ._profile import SystemProfile

__all__ = ["DEFAULT_SYSTEM", "ProfileError", "available_systems", "load_profile"]

#: the system a scenario drills when it names none
DEFAULT_SYSTEM = "payments"
GROUP = "faultline.systems"

_loaded: dict[str, SystemProfile] = {}


class ProfileError(LookupError):
    """No such system profile, or it is not a :class:`SystemProfile` (message says why)."""


def available_systems() -> list[str]:
    """Names registered under the ``faultline.systems`` entry-point group."""
    return sorted(ep.name for ep in entry_points(group=GROUP))


def _resolve(spec: str) -> Any:
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ProfileError(f"system {spec!r}: cannot import {module_name!r}: {exc}") from None
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ProfileError(f"system {spec!r}: {module_name} has no {attr!r}") from None
    found = [ep for ep in entry_points(group=GROUP) if ep.name == spec]
    if not found:
        known = ", ".join(available_systems()) or "none installed"
        raise ProfileError(f"unknown system {spec!r}; known: {known} "
                           "(or give a module path, 'package.module:PROFILE')")
    try:
        return found[0].load()
    except Exception as exc:
        raise ProfileError(f"system {spec!r}: loading {found[0].value} failed: "
                           f"{type(exc).__name__}: {exc}") from None


def load_profile(name: str | None = None) -> SystemProfile:
    """The profile called ``name`` (default :data:`DEFAULT_SYSTEM`), loaded once."""
    spec = name or DEFAULT_SYSTEM
    profile = _loaded.get(spec)
    if profile is None:
        value = _resolve(spec)
        if callable(value) and not isinstance(value, SystemProfile):
            value = value()
        if not isinstance(value, SystemProfile):
            raise ProfileError(f"system {spec!r} is a {type(value).__name__}, "
                               "not a faultline.system.SystemProfile")
        profile = _loaded[spec] = value
    return profile
