"""Loading scenario files: YAML with line numbers, errors as readable messages.

An invalid file never produces a traceback: it raises :class:`ScenarioError`, whose
message has one line per problem, ``FILE:LINE: FIELD.PATH: what was expected``.
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

__all__ = ["ScenarioError", "ScenarioProblem", "load_scenario", "parse_scenario", "validate_paths"]


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


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """Parse and validate scenario YAML ``text``; ``file`` names it in errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(file, [ScenarioProblem("", f"malformed YAML: {problem}", line)]) from None
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else type(data).__name__
        raise ScenarioError(
            file, [ScenarioProblem("", f"expected a mapping of scenario fields, got {kind}", 1)]
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(file, _problems(exc, _line_map(node))) from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate one scenario file. Raises :class:`ScenarioError` (never
    a traceback-worthy exception) when it cannot be read or is invalid."""
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(file, [ScenarioProblem("", f"cannot read: {exc}")]) from None
    return parse_scenario(text, file)


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    files: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(str(f) for f in sorted(path.rglob("*.y*ml")))
        else:
            files.append(os.fspath(p))
    return files


def validate_paths(paths: Iterable[str | os.PathLike[str]]) -> list[ScenarioError]:
    """Validate every file (directories: every ``*.yaml``/``*.yml`` below them).

    Returns the errors, empty when all are valid; also an error for two files that
    declare the same scenario ``name``.
    """
    errors: list[ScenarioError] = []
    seen: dict[str, str] = {}
    for file in _expand(paths):
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
