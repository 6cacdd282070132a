"""Loading scenario files: YAML with line numbers, errors as readable messages.

An invalid file never produces a traceback: it raises :class:`ScenarioError`, whose
message has one line per problem, ``FILE:LINE: FIELD.PATH: what was expected``.

Two passes: the model checks the file's structure (types, units, windows); then what
depends on the system under test — its hops, services, actions, operations, workload
params and invariants — is checked against the system's profile.

Scenario files come from people and from CI jobs, so the YAML reader is defensive: no
aliases (``*name``: a few hundred bytes of nested aliases expand to gigabytes, and a
self-referencing one never ends), no duplicate keys (YAML's "last one wins" hides typos),
a size cap and a depth cap; each is a one-line error naming the file and line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ._model import Scenario

__all__ = ["ScenarioError", "ScenarioProblem", "load_scenario", "parse_scenario",
           "scenario_files", "validate_paths"]

#: the largest scenario file read (a scenario is a page of YAML)
MAX_BYTES = 256 * 1024
#: the deepest nesting of mappings and sequences accepted
MAX_DEPTH = 40


@dataclass(frozen=True, slots=True)
class ScenarioProblem:
    """One thing wrong in a scenario file."""

    field: str
    message: str
    line: int | None = None

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line is not None else file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``str()`` is the full human message."""

    def __init__(self, file: str, problems: list[ScenarioProblem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(p.render(file) for p in problems))


def _format_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_map(node: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """Field path -> 1-based line, for every mapping key and sequence item."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[Any, ...]) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = getattr(key_node, "value", None)
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return lines


def _line_for(loc: tuple[Any, ...], lines: Mapping[tuple[Any, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


_MESSAGES = {
    "missing": "missing required field",
    "extra_forbidden": "unknown field (not part of the scenario schema here)",
}


def _problems(exc: ValidationError, lines: Mapping[tuple[Any, ...], int]) -> list[ScenarioProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.endswith("-fault")))
        ctx = err.get("ctx") or {}
        if err["type"] == "scenario_field" and "field" in ctx:
            loc = tuple(ctx["field"])
        msg = _MESSAGES.get(err["type"], err["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] in ("literal_error", "enum") and "expected" in ctx:
            msg = f"got {err.get('input')!r}; expected {ctx['expected']}"
        if err["type"] == "model_type" and loc == ():
            msg = "expected a mapping of scenario fields at the top level"
        problems.append(ScenarioProblem(_format_path(loc), msg, _line_for(loc, lines)))
    return problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys (with the line of the second)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def _line(event: yaml.Event) -> int | None:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else None


def _screen(text: str, file: str) -> None:
    """Refuse what would make the YAML reader blow up, before it builds anything."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise ScenarioError(file, [ScenarioProblem(
            "", f"the file is larger than {MAX_BYTES // 1024} KiB: not a scenario")])
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ScenarioError(file, [ScenarioProblem(
                    "", f"YAML aliases (*{event.anchor}) are not allowed in scenario files: "
                        "write the value out", _line(event))])
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ScenarioError(file, [ScenarioProblem(
                        "", f"nested deeper than {MAX_DEPTH} levels", _line(event))])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # parse_scenario reports malformed YAML with its line


def parse_scenario(text: str, file: str = "<scenario>", *, profile: Any = None) -> Scenario:
    """Parse and validate scenario YAML ``text``; ``file`` names it in errors.

    The system-dependent checks use ``profile`` when given, else the profile the
    scenario names (``system:``), found with :func:`faultline.system.load_profile`.
    """
    _screen(text, file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(file, [ScenarioProblem("", f"malformed YAML: {problem}", line)]) from None
    except RecursionError:
        raise ScenarioError(file, [ScenarioProblem("", "nested too deeply")]) from None
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else type(data).__name__
        raise ScenarioError(
            file, [ScenarioProblem("", f"expected a mapping of scenario fields, got {kind}", 1)]
        )
    lines = _line_map(node)
    from ._system import check_against_profile, check_raw_names

    try:
        scn = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc, lines)
        problems += [ScenarioProblem(p.field, p.message, _line_for(_parse_path(p.field), lines))
                     for p in check_raw_names(data, profile, _near(file))]
        raise ScenarioError(file, problems) from None

    scn, problems = check_against_profile(scn, profile, _near(file))
    if problems:
        raise ScenarioError(file, [ScenarioProblem(p.field, p.message, _line_for(
            _parse_path(p.field), lines)) for p in problems])
    return scn


def _near(file: str) -> Path | None:
    """The folder of a scenario file (where its system's module may live)."""
    return Path(file).parent if not file.startswith("<") else None


def _parse_path(field: str) -> tuple[Any, ...]:
    """``faults[1].hop`` -> ``("faults", 1, "hop")`` (for the line map)."""
    out: list[Any] = []
    for part in field.replace("]", "").split("."):
        name, *indices = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i) for i in indices if i.isdigit())
    return tuple(out)


def load_scenario(path: str | os.PathLike[str], *, profile: Any = None) -> Scenario:
    """Read and validate one scenario file. Raises :class:`ScenarioError` (never
    a traceback-worthy exception) when it cannot be read or is invalid."""
    file = os.fspath(path)
    try:
        if Path(file).stat().st_size > MAX_BYTES:
            raise ScenarioError(file, [ScenarioProblem(
                "", f"the file is larger than {MAX_BYTES // 1024} KiB: not a scenario")])
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(file, [ScenarioProblem("", f"cannot read: {exc}")]) from None
    return parse_scenario(text, file, profile=profile)


#: YAML files in a scenario folder that are not scenarios
NOT_SCENARIOS = frozenset({"alerts.yaml", "alerts.yml", "space.yaml", "space.yml"})


def scenario_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The scenario files named by ``paths``: files as given, folders searched for
    ``*.yaml``/``*.yml`` (alert rule and exploration-space files left out)."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(f for f in sorted(path.rglob("*")) if f.suffix in (".yaml", ".yml")
                         and f.is_file() and f.name not in NOT_SCENARIOS)
        else:
            files.append(path)
    return files


def validate_paths(paths: Iterable[str | os.PathLike[str]]) -> list[ScenarioError]:
    """Validate every file (directories: every ``*.yaml``/``*.yml`` below them).

    Returns the errors, empty when all are valid; also an error for two files that
    declare the same scenario ``name``.
    """
    errors: list[ScenarioError] = []
    seen: dict[str, str] = {}
    for path in scenario_files(paths):
        file = os.fspath(path)
        try:
            scenario = load_scenario(file)
        except ScenarioError as exc:
            errors.append(exc)
            continue
        other = seen.setdefault(scenario.name, file)
        if other != file:
            errors.append(
                ScenarioError(
                    file, [ScenarioProblem("name", f"{scenario.name!r} is also the name in {other}")]
                )
            )
    return errors
