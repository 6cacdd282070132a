"""Space files: narrowing and weighting the fault space (``faultline explore --space``).

Every key is optional; what a file leaves out keeps the default space built from the
profile. A map of weights *narrows*: only the names it lists (exactly, or by a glob such
as ``worker-*``) are drawn, with those weights; ``"*": 1`` keeps the rest. A range is
``[low, high]`` or one value. Example (docs/explore.md has every key)::

    faults:
      hops: {api->postgres: 3, "*": 1}    # the database hop three times as often
      toxics: {lost_ack: 2, down: 1, latency: 1}
      services: {worker-*: 1}             # process faults only on the workers
      patterns: {slow_and_flapping: 2, "*": 1}
      attributes: {latency: {latency: [50ms, 400ms]}}
    load: {users: [6, 10], duration: [10s, 14s]}

A bad file is an error naming the file, the line and the field, like a scenario's
(the same reader: no aliases, no duplicate keys), and never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from faultline.checks import INVARIANTS
from faultline.scenario import SIGNALS, TOXIC_ATTRIBUTES, TOXIC_TYPES, SLOSpec, parse_duration
from faultline.scenario import ScenarioError as _ReadError
from faultline.scenario import ScenarioProblem as SpaceProblem
from faultline.scenario._load import (
    MAX_BYTES,
    _line_for,
    _line_map,
    _parse_path,
    _problems,
    _screen,
    _UniqueKeyLoader,
)

from ._patterns import PATTERNS
from ._render import _MILLIS
from ._space import FAULT_KINDS, FaultSpace, Range

__all__ = ["SpaceError", "SpaceProblem", "load_space", "parse_space"]


class SpaceError(ValueError):
    """A space file that cannot be used; ``str()`` has one line per problem,
    ``FILE:LINE: FIELD: what was expected``."""

    def __init__(self, file: str, problems: list[SpaceProblem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(p.render(file) for p in problems))


def _as_range(kind: str) -> Any:
    def convert(value: Any) -> Any:
        parts = value if isinstance(value, list) else [value]
        if len(parts) not in (1, 2):
            raise ValueError("a range is [low, high] or one value")
        if kind == "seconds":
            nums = [parse_duration(p) for p in parts]
        elif kind == "ms":
            nums = [parse_duration(p) * 1000 if isinstance(p, str) else p for p in parts]
        else:
            nums = parts
        if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in nums):
            raise ValueError(f"expected numbers, got {value!r}")
        low, high = (float(nums[0]), float(nums[-1]))
        if low > high:
            raise ValueError(f"the low end ({low:g}) is above the high end ({high:g})")
        if low < 0:
            raise ValueError("a range cannot go below 0")
        return (low, high)
    return BeforeValidator(convert)


Seconds = Annotated[tuple[float, float], _as_range("seconds")]
Numbers = Annotated[tuple[float, float], _as_range("number")]
Millis = Annotated[tuple[float, float], _as_range("ms")]
Weight = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoadFile(_Model):
    profiles: dict[Literal["steady", "ramp", "spike", "soak"], Weight] | None = None
    users: Numbers | None = None
    duration: Seconds | None = None
    random_mix: Share | None = None
    spike_multiplier: Numbers | None = None
    params: dict[str, Numbers] | None = None


class FaultsFile(_Model):
    count: dict[Annotated[int, Field(ge=1, le=10)], Weight] | None = None
    kinds: dict[Literal[FAULT_KINDS], Weight] | None = None  # type: ignore[valid-type]
    patterns: dict[str, Weight] | None = None
    hops: dict[str, Weight] | None = None
    toxics: dict[str, Weight] | None = None
    services: dict[str, Weight] | None = None
    signals: dict[str, Weight] | None = None
    actions: dict[str, Weight] | None = None
    streams: dict[Literal["downstream", "upstream"], Weight] | None = None
    scopes: dict[Literal["default", "connection", "exchange"], Weight] | None = None
    full_toxicity: Share | None = None
    toxicity: Numbers | None = None
    triggered: Share | None = None
    triggers: dict[Literal["operations", "metric"], Weight] | None = None
    metrics: dict[str, Numbers] | None = None
    ops_per_user: Annotated[float, Field(gt=0)] | None = None
    attributes: dict[str, dict[str, Any]] | None = None
    window: Seconds | None = None
    pause: Seconds | None = None
    restart_after: Seconds | None = None
    restart_share: Share | None = None


class SpaceFile(_Model):
    """The whole file; see the module docstring and docs/explore.md."""

    system: str | None = None
    load: LoadFile | None = None
    faults: FaultsFile | None = None
    settle: Annotated[float, BeforeValidator(parse_duration)] | None = None
    slos: list[SLOSpec] | None = None
    invariants: list[str] | None = None


def _select(names: list[str], spec: dict[str, float]) -> dict[str, float]:
    """Weights of ``names`` from a map of names and globs (the most specific wins)."""
    out: dict[str, float] = {}
    for name in names:
        if name in spec:
            out[name] = spec[name]
            continue
        matched = sorted((len(p.replace("*", "")), w) for p, w in spec.items()
                         if fnmatchcase(name, p))
        if matched:
            out[name] = matched[-1][1]
    return out


def _unmatched(where: str, spec: dict[str, Any] | None, names: list[str], what: str,
               system: str) -> list[SpaceProblem]:
    if not spec:
        return []
    return [SpaceProblem(f"{where}.{key}", f"matches no {what} of system {system}; "
                         f"expected one of: {', '.join(names) or 'none'} (or a glob)")
            for key in spec if not any(fnmatchcase(n, key) for n in names)]


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _check_names(raw: dict[str, Any], base: FaultSpace) -> list[SpaceProblem]:
    """What the file names that the system (or the engine) does not have. Reads the raw
    mapping, so that a file with type errors still gets every name problem listed."""
    profile = base.profile
    name = profile.name
    problems: list[SpaceProblem] = []
    system = raw.get("system")
    if isinstance(system, str) and system != name:
        problems.append(SpaceProblem("system", f"this space is for {system!r}; the "
                                     f"exploration drills {name!r}"))
    f = _mapping(raw.get("faults"))
    for key, names, what, owner in (
            ("hops", [h.name for h in profile.hops], "hop", name),
            ("services", [s.name for s in profile.services], "service", name),
            ("actions", list(profile.actions), "action", name),
            ("toxics", list(TOXIC_TYPES), "toxic", "any"),
            ("signals", list(SIGNALS), "signal", "any"),
            ("patterns", list(PATTERNS), "pattern", "any")):
        problems += _unmatched(f"faults.{key}", _mapping(f.get(key)), names, what, owner)
    for metric in _mapping(f.get("metrics")):
        if metric not in profile.metrics and not (profile.metric_prefix
                                                  and metric.startswith(profile.metric_prefix)):
            problems.append(SpaceProblem(f"faults.metrics.{metric}", "unknown metric; "
                                         f"expected one of: {', '.join(profile.metrics)} "
                                         f"or a raw metric name ({profile.metric_prefix}...)"))
    for toxic, attrs in _mapping(f.get("attributes")).items():
        model = TOXIC_ATTRIBUTES.get(toxic)
        if model is None:
            problems.append(SpaceProblem(f"faults.attributes.{toxic}", "unknown toxic; "
                                         f"expected one of: {', '.join(TOXIC_TYPES)}"))
            continue
        if not isinstance(attrs, dict):
            problems.append(SpaceProblem(f"faults.attributes.{toxic}", "expected a mapping "
                                         "of attribute: range"))
            continue
        for attr, value in attrs.items():
            where = f"faults.attributes.{toxic}.{attr}"
            if attr not in model.model_fields:
                problems.append(SpaceProblem(where, f"not an attribute of a {toxic} toxic "
                                             f"(allowed: {', '.join(model.model_fields)})"))
                continue
            try:
                _as_range("ms" if attr in _MILLIS.get(toxic, ()) else "number").func(value)
            except ValueError as exc:
                problems.append(SpaceProblem(where, str(exc)))
    invariants = raw.get("invariants")
    for i, inv in enumerate(invariants if isinstance(invariants, list) else []):
        if inv not in INVARIANTS or inv not in profile.invariants:
            problems.append(SpaceProblem(f"invariants[{i}]", f"{inv!r} is not an invariant "
                                         f"of system {name}; its invariants: "
                                         f"{', '.join(profile.invariants)}"))
    return problems


def _check_params(spec: SpaceFile, base: FaultSpace) -> list[SpaceProblem]:
    """Both ends of every param range must be params the workload accepts."""
    params = (spec.load.params if spec.load else None) or {}
    validate = base.profile.workload.validate_params
    for end in (0, 1):
        if not params:
            break
        try:
            if validate is None:
                raise ValueError(f"the {base.profile.name} workload takes no params")
            validate({k: v[end] for k, v in params.items()})
        except ValueError as exc:
            return [SpaceProblem("load.params", str(exc))]
    return []


def _apply(spec: SpaceFile, base: FaultSpace) -> FaultSpace:
    f = spec.faults or FaultsFile()
    lf = spec.load or LoadFile()
    changes: dict[str, Any] = {}
    load = base.load
    load_changes: dict[str, Any] = {}
    if lf.profiles is not None:
        load_changes["profiles"] = {k: float(v) for k, v in lf.profiles.items()}
    for key in ("users", "duration", "spike_multiplier"):
        value = getattr(lf, key)
        if value is not None:
            load_changes[key] = Range(value[0], value[1])
    if lf.random_mix is not None:
        load_changes["random_mix"] = lf.random_mix
    if lf.params is not None:
        load_changes["params"] = {k: Range(v[0], v[1]) for k, v in lf.params.items()}
    if load_changes:
        changes["load"] = dataclasses.replace(load, **load_changes)
    for key, names in (("hops", list(base.hops)), ("services", list(base.services)),
                       ("actions", list(base.actions)), ("toxics", list(TOXIC_TYPES)),
                       ("signals", list(SIGNALS)), ("patterns", list(PATTERNS))):
        given = getattr(f, key)
        if given is not None:
            changes[key] = _select(names, given)
    for key in ("count", "kinds", "streams", "scopes", "triggers"):
        given = getattr(f, key)
        if given is not None:
            changes[key] = {k: float(v) for k, v in given.items()}
    for key in ("full_toxicity", "triggered", "ops_per_user", "restart_share"):
        if getattr(f, key) is not None:
            changes[key] = getattr(f, key)
    for key in ("toxicity", "window", "pause", "restart_after"):
        if getattr(f, key) is not None:
            changes[key] = Range(*getattr(f, key)[:2])
    if f.metrics is not None:
        changes["metrics"] = {m: Range(r[0], r[1]) for m, r in f.metrics.items()}
    if f.attributes:
        attributes = {t: dict(a) for t, a in base.attributes.items()}
        for toxic, attrs in f.attributes.items():
            for attr, value in attrs.items():
                kind = "ms" if attr in _MILLIS.get(toxic, ()) else "number"
                low, high = _as_range(kind).func(value)
                old = attributes.get(toxic, {}).get(attr)
                attributes.setdefault(toxic, {})[attr] = Range(low, high, log=bool(
                    old and old.log and low > 0))
        changes["attributes"] = attributes
    if spec.settle is not None:
        changes["settle"] = spec.settle
    if spec.slos is not None:
        changes["slos"] = tuple(s.model_dump(by_alias=True, exclude_none=True)
                                for s in spec.slos)
    if spec.invariants is not None:
        changes["invariants"] = tuple(spec.invariants)
    return base.replace(**changes)


def parse_space(text: str, file: str, base: FaultSpace) -> FaultSpace:
    """``base`` narrowed and weighted by the space file ``text`` (named ``file`` in
    errors). Raises :class:`SpaceError`."""
    try:
        _screen(text, file)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except _ReadError as exc:
        raise SpaceError(file, exc.problems) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpaceError(file, [SpaceProblem("", f"malformed YAML: {problem}",
                                             mark.line + 1 if mark else None)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpaceError(file, [SpaceProblem("", "expected a mapping of space fields "
                                             f"(load, faults, ...), got {type(data).__name__}",
                                             1)])
    lines = _line_map(node)
    problems = []
    spec = None
    try:
        spec = SpaceFile.model_validate(data)
    except ValidationError as exc:
        problems += [SpaceProblem(p.field, p.message.replace("the scenario schema", "a space "
                                                             "file"), p.line)
                     for p in _problems(exc, lines)]
    named = _check_names(data, base) + (_check_params(spec, base) if spec else [])
    problems += [SpaceProblem(p.field, p.message, _line_for(_parse_path(p.field), lines))
                 for p in named]
    if problems or spec is None:
        raise SpaceError(file, sorted(problems, key=lambda p: p.line or 0))
    space = _apply(spec, base)
    if space.is_empty():
        raise SpaceError(file, [SpaceProblem("faults", "nothing left to draw: no fault kind "
                                             "of this space has anything to act on (check "
                                             "kinds, hops, toxics, services, actions)")])
    return space


def load_space(path: str | os.PathLike[str], base: FaultSpace) -> FaultSpace:
    """Read a space file and apply it to ``base`` (:func:`parse_space`)."""
    file = os.fspath(path)
    try:
        if Path(file).stat().st_size > MAX_BYTES:
            raise SpaceError(file, [SpaceProblem("", f"larger than {MAX_BYTES // 1024} KiB: "
                                                 "not a space file")])
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(file, [SpaceProblem("", f"cannot read: {exc}")]) from None
    return parse_space(text, file, base)
