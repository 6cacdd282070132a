"""Finding a system profile by the name a scenario gives (``system: payments``).

Two ways, so that the engine never imports a system itself:

- an installed package declares it under the ``faultline.systems`` entry-point group
  (``payments = "payments.drill:PROFILE"`` in this repository's pyproject.toml);
- a scenario names a module path, ``system: mycompany.drills:PROFILE``: importable as
  installed or on ``PYTHONPATH``, or found next to the scenario (the nearest folder above
  the scenario file that holds the package ``mycompany``), so a team's repository drills
  its own service with no installation step.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path
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


def _importable_near(module_name: str, near: Path | None) -> bool:
    """Put on ``sys.path`` the nearest folder above ``near`` holding the module's top
    package; whether one was found."""
    top = module_name.split(".")[0]
    for folder in ([near, *near.parents] if near is not None else []):
        if (folder / top / "__init__.py").exists() or (folder / f"{top}.py").exists():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
            return True
    return False


def _resolve(spec: str, near: Path | None) -> Any:
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not (exc.name and module_name.startswith(exc.name)
                    and _importable_near(module_name, near)):
                raise ProfileError(f"system {spec!r}: cannot import {module_name!r}: {exc}"
                                   ) from None
            try:
                module = importlib.import_module(module_name)
            except ImportError as again:
                raise ProfileError(f"system {spec!r}: cannot import {module_name!r}: "
                                   f"{again}") from None
        except ImportError as exc:
            raise ProfileError(f"system {spec!r}: cannot import {module_name!r}: {exc}") from None
        except Exception as exc:  # the module's own code failed (a bad Hop, ...)
            raise ProfileError(f"system {spec!r}: loading {module_name} failed: "
                               f"{type(exc).__name__}: {exc}") from None
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


def load_profile(name: str | None = None, *, near: Path | None = None) -> SystemProfile:
    """The profile called ``name`` (default :data:`DEFAULT_SYSTEM`), loaded once;
    ``near`` is where the scenario naming it lives (a module path is looked for there)."""
    spec = name or DEFAULT_SYSTEM
    profile = _loaded.get(spec)
    if profile is None:
        value = _resolve(spec, near.resolve() if near is not None else None)
        if callable(value) and not isinstance(value, SystemProfile):
            try:
                value = value()
            except Exception as exc:
                raise ProfileError(f"system {spec!r}: building the profile failed: "
                                   f"{type(exc).__name__}: {exc}") from None
        if not isinstance(value, SystemProfile):
            raise ProfileError(f"system {spec!r} is a {type(value).__name__}, "
                               "not a faultline.system.SystemProfile")
        profile = _loaded[spec] = value
    return profile
