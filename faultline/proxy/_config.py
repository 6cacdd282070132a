"""``toxiproxy.json``: the file Toxiproxy's server loads with ``-config``.

A JSON list of ``{"name", "listen", "upstream", "enabled"}`` objects, exactly what
``POST /populate`` takes. Faultline also accepts an optional ``"toxics"`` list per proxy
(the bodies of ``POST /proxies/{proxy}/toxics``), added after the proxies exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "load_config"]


class ConfigError(ValueError):
    """The config file is missing or is not a list of proxy objects."""


def load_config(path: str | Path) -> list[dict[str, Any]]:
    """Read and shape-check a ``toxiproxy.json`` file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"config {path} is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
        raise ConfigError(f"config {path} must be a JSON list of proxy objects")
    for i, proxy in enumerate(data, start=1):
        toxics = proxy.get("toxics")
        if toxics is not None and not isinstance(toxics, list):
            raise ConfigError(f"config {path}: proxy {i}: 'toxics' must be a list")
    return data
