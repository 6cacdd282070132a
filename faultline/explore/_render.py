"""A drill (the plain mapping a scenario file holds) written as a scenario a person reads.

Drawn and shrunk drills are ordinary scenario files: ``faultline run`` replays them, a
person commits them. So they are written the way the catalogue is: one flow mapping
per fault, durations as ``3s`` / ``700ms``, keys in the order one reads a fault
(when, where, what, how). The text always loads back through
:func:`faultline.scenario.parse_scenario` to the same drill (tests hold it to that).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from typing import Any

import yaml

from faultline.scenario import TOXIC_ATTRIBUTES, format_duration
from faultline.scenario._toxics import _to_ms
from faultline.system import DEFAULT_SYSTEM

__all__ = ["describe_fault", "fault_label", "render_scenario", "slug"]

#: fault keys that hold seconds
_SECONDS = frozenset({"at", "for", "until", "restart_after", "deadline"})


def _millis() -> dict[str, tuple[str, ...]]:
    """Toxic attributes in milliseconds (written ``200ms``): those the scenario model
    reads through its millisecond converter, so a new toxic needs no entry here."""
    out: dict[str, tuple[str, ...]] = {}
    for toxic, model in TOXIC_ATTRIBUTES.items():
        names = tuple(name for name, info in model.model_fields.items()
                      if any(getattr(m, "func", None) is _to_ms for m in info.metadata))
        if names:
            out[toxic] = names
    return out


_MILLIS = _millis()
_FIRST = ("at", "for", "until", "when", "hop", "toxic", "kill", "signal", "restart_after",
          "pause", "restart", "action")
_LAST = ("toxicity", "stream", "scope", "name", "expect_effect")


def _dur(seconds: float) -> str:
    return format_duration(float(seconds))


def _flow(value: Any) -> str:
    return str(yaml.safe_dump(value, default_flow_style=True, sort_keys=False,
                              width=math.inf)).strip().removesuffix("...").strip()


def _fault_for_yaml(fault: dict[str, Any]) -> dict[str, Any]:
    millis = _MILLIS.get(str(fault.get("toxic")), ())
    keys = [k for k in _FIRST if k in fault]
    keys += [k for k in fault if k not in _FIRST and k not in _LAST]
    keys += [k for k in _LAST if k in fault]
    out: dict[str, Any] = {}
    for key in keys:
        value = fault[key]
        if key in _SECONDS and isinstance(value, int | float):
            value = _dur(value)
        elif key in millis and isinstance(value, int | float):
            value = f"{int(value)}ms"
        elif key == "when" and isinstance(value, dict):
            value = {k: (_dur(v) if k == "deadline" else v) for k, v in value.items()}
        out[key] = value
    return out


def _load_for_yaml(load: dict[str, Any]) -> dict[str, Any]:
    out = dict(load)
    out["duration"] = _dur(load["duration"])
    if "spike" in out:
        spike = dict(out["spike"])
        for key in ("at", "for"):
            if key in spike:
                spike[key] = _dur(spike[key])
        out["spike"] = spike
    return out


def render_scenario(data: dict[str, Any], *, header: Iterable[str] = ()) -> str:
    """The scenario file text of ``data`` (``header``: comment lines on top)."""
    lines = [f"# {line}".rstrip() for line in header]
    lines.append(f"name: {data['name']}")
    if data.get("description"):
        lines.append("description: >")
        lines += textwrap.wrap(" ".join(str(data["description"]).split()), width=86,
                               initial_indent="  ", subsequent_indent="  ",
                               break_on_hyphens=False, break_long_words=False)
    if data.get("system") and data["system"] != DEFAULT_SYSTEM:
        lines.append(f"system: {_flow(data['system'])}")
    lines.append(f"seed: {int(data['seed'])}")
    if data.get("stack") and data["stack"] != "local":
        lines.append(f"stack: {data['stack']}")
    lines.append(f"load: {_flow(_load_for_yaml(data['load']))}")
    faults = data.get("faults") or []
    if faults:
        lines.append("faults:")
        lines += [f"  - {_flow(_fault_for_yaml(f))}" for f in faults]
    else:
        lines.append("faults: []")
    for key in ("recover_within", "settle"):
        if data.get(key) is not None:
            lines.append(f"{key}: {_dur(data[key])}")
    if data.get("slos"):
        lines.append("slos:")
        lines += [f"  - {_flow(s)}" for s in data["slos"]]
    if data.get("invariants"):
        lines.append(f"invariants: {_flow(list(data['invariants']))}")
    return "\n".join(lines) + "\n"


def slug(text: str) -> str:
    """``text`` as a piece of a scenario name (``api->postgres`` -> ``api-postgres``)."""
    out = "".join(c if c.isalnum() or c in "_.-" else "-" for c in text.replace("->", "-"))
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-.") or "x"


def fault_label(fault: dict[str, Any]) -> str:
    """A short name of one fault (``lost_ack-api-postgres``, ``kill-worker-1``)."""
    if "toxic" in fault:
        return slug(f"{fault['toxic']}-{fault['hop']}")
    for kind in ("kill", "pause", "restart", "action"):
        if kind in fault:
            return slug(f"{kind}-{fault[kind]}") if kind != "action" else slug(fault[kind])
    return "fault"


def describe_fault(fault: dict[str, Any]) -> str:
    """One fault in words, for descriptions and reports."""
    if "when" in fault:
        when = fault["when"]
        start = (f"once {when['operations']} operations completed" if "operations" in when
                 else f"once {when['metric']} > {when.get('above')}" if "above" in when
                 else f"once {when['metric']} < {when.get('below')}")
        start += f" (watching from {_dur(fault['at'])})"
    else:
        start = f"at {_dur(fault['at'])}"
    span = f" for {_dur(fault['for'])}" if "for" in fault else ""
    if "toxic" in fault:
        attrs = {k: v for k, v in fault.items()
                 if k not in ("at", "for", "until", "when", "hop", "toxic")}
        extra = f" ({', '.join(f'{k} {v}' for k, v in attrs.items())})" if attrs else ""
        return f"{fault['toxic']} on {fault['hop']}{extra} {start}{span}"
    if "kill" in fault:
        back = (f", back after {_dur(fault['restart_after'])}" if "restart_after" in fault
                else ", not restarted until the load ends")
        return f"{fault.get('signal', 'SIGKILL')} to {fault['kill']} {start}{back}"
    if "pause" in fault:
        return f"{fault['pause']} paused {start}{span}"
    if "restart" in fault:
        return f"{fault['restart']} restarted {start}"
    return f"{fault.get('action')} {start}{span}"
