"""The validated Scenario model (pydantic v2). One scenario file = one ``Scenario``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from faultline.checks import INVARIANTS
from faultline.system import DEFAULT_SYSTEM

from ._duration import Duration, parse_duration
from ._toxics import CONNECTION_ONLY, TOXIC_TYPES, validate_attributes

__all__ = [
    "PROFILES",
    "SIGNALS",
    "ActionFault",
    "Bound",
    "ExpectedAlert",
    "Fault",
    "KillFault",
    "LoadSpec",
    "PauseFault",
    "RestartFault",
    "SLOSpec",
    "Scenario",
    "SpikeSpec",
    "ToxicFault",
    "Trigger",
]

PROFILES = ("steady", "ramp", "spike", "soak")
SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGABRT")
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- load


class SpikeSpec(_Model):
    """For ``profile: spike``: multiply the users by ``multiplier`` from ``at`` for ``for``."""

    at: Duration
    for_: Duration = Field(alias="for")
    multiplier: float = Field(3.0, gt=0)


class LoadSpec(_Model):
    """Locust load: a shape from ``loadtests/`` and the operation mix (relative weights).

    ``rate`` (operations/s) switches to a constant arrival rate so that tail latency is
    not hidden by coordinated omission; without it each user runs closed-loop.
    """

    profile: Literal["steady", "ramp", "spike", "soak"] = "steady"
    users: int = Field(10, ge=1)
    spawn_rate: float | None = Field(None, gt=0)
    duration: Duration = 60.0
    rate: float | None = Field(None, gt=0)
    #: relative weights of the workload's operations (default: the workload's own)
    mix: dict[str, float] | None = None
    spike: SpikeSpec | None = None
    #: the workload's own knobs, checked by its profile (e.g. amounts, races)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("the load duration must be positive")
        return v

    @field_validator("mix")
    @classmethod
    def _weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        if any(w < 0 for w in v.values()):
            raise ValueError("mix weights must be >= 0")
        if not v or sum(v.values()) <= 0:
            raise ValueError("the mix needs at least one operation with a positive weight")
        return v

    @property
    def effective_spawn_rate(self) -> float:
        """``spawn_rate`` or, when unset, all users within one second."""
        return self.spawn_rate if self.spawn_rate is not None else float(self.users)


# ---------------------------------------------------------------- faults


class Trigger(_Model):
    """Start a fault when the system reaches a state, not at a fixed time.

    ``metric`` (a well-known name of the system's profile such as ``outbox_backlog``,
    ``stream_pending``, ``inflight``, ``replica_lag``, or a raw metric name; summed over
    services and labels) crossing ``above`` or ``below``, or ``operations``: after that
    many completed client operations. The fault's ``at`` is when watching begins;
    ``deadline`` (seconds from load start, default: the load's end) is when the drill
    gives up: the fault is then not injected, which the verdict reports (vacuous).
    """

    metric: str | None = None
    above: float | None = None
    below: float | None = None
    operations: int | None = Field(None, ge=1)
    deadline: Duration | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> Trigger:
        if (self.metric is None) == (self.operations is None):
            raise ValueError("a 'when' needs exactly one of: metric (with above or below), "
                             "operations")
        if self.metric is not None and (self.above is None) == (self.below is None):
            raise ValueError("a metric condition needs exactly one of 'above', 'below'")
        if self.operations is not None and (self.above is not None or self.below is not None):
            raise ValueError("'above'/'below' go with 'metric', not with 'operations'")
        return self

    def describe(self) -> str:
        if self.operations is not None:
            return f"after {self.operations} operations"
        bound = f"> {self.above:g}" if self.above is not None else f"< {self.below:g}"
        return f"{self.metric} {bound}"


class _FaultBase(_Model):
    at: Duration
    for_: Duration | None = Field(None, alias="for")
    until: Duration | None = None
    name: str | None = None
    #: start when the system reaches a state (from ``at`` on), not at ``at``
    when: Trigger | None = None
    #: ``false`` for a fault that may legitimately change nothing (the verdict would
    #: otherwise call a drill whose fault never touched the system vacuous)
    expect_effect: bool = True

    @model_validator(mode="after")
    def _window(self) -> _FaultBase:
        if self.for_ is not None and self.until is not None:
            raise ValueError("give either 'for' or 'until', not both")
        if self.until is not None and self.until <= self.at:
            raise ValueError(f"'until' ({self.until:g}s) must be after 'at' ({self.at:g}s)")
        if self.when is not None and self.until is not None:
            raise ValueError("a triggered fault ('when') lasts 'for' a time; 'until' is "
                             "a fixed time it cannot know")
        if (self.when is not None and self.when.deadline is not None
                and self.when.deadline <= self.at):
            raise ValueError(f"'when.deadline' ({self.when.deadline:g}s) must be after "
                             f"'at' ({self.at:g}s)")
        return self

    @property
    def end(self) -> float | None:
        """When the fault heals (seconds from load start) if it starts at ``at``;
        ``None`` = at the end of the load. A triggered fault lasts ``for`` from when
        it really started."""
        if self.for_ is not None:
            return self.at + self.for_
        return self.until

    @property
    def kind(self) -> str:
        """``toxic``, ``kill``, ``pause``, ``restart`` or ``action``."""
        raise NotImplementedError

    @property
    def target(self) -> str:
        """What it acts on: the hop, the service or the action's name."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """``name`` or a short description (used in reports and fault events)."""
        raise NotImplementedError


class ToxicFault(_FaultBase):
    """A toxic on one network hop. Attributes may be written flat or under ``attributes``.

    ``scope``: does toxicity roll per connection (Toxiproxy's meaning, and the fault
    proxy API's default) or per request/reply exchange? In scenarios the default is per
    exchange for every toxic that acts on one (all but ``slow_close``, ``connect_delay``
    and ``down``): with pooled connections opened before the fault, a per-connection
    roll is all or nothing, and a toxicity of 0.2 should hit about a fifth of the
    requests.
    """

    hop: str
    toxic: str
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0.0, le=1.0)
    scope: Literal["connection", "exchange"] | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_attributes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = {"at", "for", "for_", "until", "name", "hop", "toxic", "stream", "toxicity",
                 "scope", "attributes", "when", "expect_effect"}
        extra = {k: v for k, v in data.items() if k not in known}
        if not extra:
            return data
        merged = dict(data.get("attributes") or {}) if isinstance(data.get("attributes"), dict) else {}
        merged.update(extra)
        out = {k: v for k, v in data.items() if k in known}
        out["attributes"] = merged
        return out

    @field_validator("toxic")
    @classmethod
    def _toxic(cls, v: str) -> str:
        if v not in TOXIC_TYPES:
            raise ValueError(f"unknown toxic {v!r}; expected one of: {', '.join(TOXIC_TYPES)}")
        return v

    @model_validator(mode="after")
    def _attributes(self) -> ToxicFault:
        object.__setattr__(self, "attributes", validate_attributes(self.toxic, self.attributes))
        if self.scope == "exchange" and self.toxic in CONNECTION_ONLY:
            raise ValueError(f"a {self.toxic} toxic acts on a whole connection: "
                             "'scope: exchange' does not apply")
        if self.scope is None:
            scope = "connection" if self.toxic in CONNECTION_ONLY else "exchange"
            object.__setattr__(self, "scope", scope)
        return self

    @property
    def kind(self) -> str:
        return "toxic"

    @property
    def target(self) -> str:
        return self.hop

    @property
    def label(self) -> str:
        return self.name or f"{self.toxic}@{self.hop}"


class KillFault(_FaultBase):
    """Send ``signal`` to a service; restart it ``restart_after`` later (if given)."""

    kill: str
    signal: Literal["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGABRT"] = "SIGKILL"
    restart_after: Duration | None = None

    @property
    def service(self) -> str:
        return self.kill

    @property
    def target(self) -> str:
        return self.kill

    @property
    def kind(self) -> str:
        return "kill"

    @property
    def label(self) -> str:
        return self.name or f"kill {self.kill}"


class PauseFault(_FaultBase):
    """SIGSTOP a service, SIGCONT it when the window ends (``for`` or ``until`` required)."""

    pause: str

    @model_validator(mode="after")
    def _needs_window(self) -> PauseFault:
        if self.end is None:
            raise PydanticCustomError(
                "missing_window", "a pause needs 'for' (or 'until'): how long the service stays stopped"
            )
        return self

    @property
    def service(self) -> str:
        return self.pause

    @property
    def target(self) -> str:
        return self.pause

    @property
    def kind(self) -> str:
        return "pause"

    @property
    def label(self) -> str:
        return self.name or f"pause {self.pause}"


class RestartFault(_FaultBase):
    """Restart a service gracefully (SIGTERM, wait, start)."""

    restart: str

    @property
    def service(self) -> str:
        return self.restart

    @property
    def target(self) -> str:
        return self.restart

    @property
    def kind(self) -> str:
        return "restart"

    @property
    def label(self) -> str:
        return self.name or f"restart {self.restart}"


class ActionFault(_FaultBase):
    """A fault only this system has, from its profile's ``actions``
    (``action: replica_replay_pause``), healed when the window ends."""

    action: str

    @property
    def kind(self) -> str:
        return "action"

    @property
    def target(self) -> str:
        return self.action

    @property
    def label(self) -> str:
        return self.name or self.action


_FAULT_KEYS = ("toxic", "kill", "pause", "restart", "action")


def _fault_kind(data: Any) -> str | None:
    if isinstance(data, BaseModel):
        return f"{getattr(data, 'kind', '')}-fault"
    if not isinstance(data, dict):
        return None
    present = [k for k in _FAULT_KEYS if k in data]
    if len(present) != 1:
        return None
    return f"{present[0]}-fault"


Fault = Annotated[
    Annotated[ToxicFault, Tag("toxic-fault")]
    | Annotated[KillFault, Tag("kill-fault")]
    | Annotated[PauseFault, Tag("pause-fault")]
    | Annotated[RestartFault, Tag("restart-fault")]
    | Annotated[ActionFault, Tag("action-fault")],
    Discriminator(
        _fault_kind,
        custom_error_type="fault_kind",
        custom_error_message=(
            "a fault needs exactly one of: toxic (with hop), kill, pause, restart, action"
        ),
    ),
]


# ---------------------------------------------------------------- SLOs and alerts


class Bound(_Model):
    """A threshold: the value must be ``below`` and/or ``above`` (strictly)."""

    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Bound:
        if self.below is None and self.above is None:
            raise ValueError("a bound needs 'below' or 'above'")
        if self.below is not None and self.above is not None and self.above >= self.below:
            raise ValueError("'above' must be smaller than 'below'")
        return self


def _bare_below(v: Any) -> Any:
    return {"below": v} if isinstance(v, int | float) and not isinstance(v, bool) else v


def _bare_above(v: Any) -> Any:
    return {"above": v} if isinstance(v, int | float) and not isinstance(v, bool) else v


class SLOSpec(_Model):
    """Objectives for one phase. A bare number means ``below`` (``above`` for throughput)."""

    phase: Literal["before", "during", "after"]
    p50_ms: Bound | None = None
    p99_ms: Bound | None = None
    error_rate: Bound | None = None
    throughput: Bound | None = None
    recover_within: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key in ("p50_ms", "p99_ms", "error_rate"):
            if key in out:
                out[key] = _bare_below(out[key])
        if "throughput" in out:
            out["throughput"] = _bare_above(out["throughput"])
        return out

    @model_validator(mode="after")
    def _sane(self) -> SLOSpec:
        if self.recover_within is not None and self.phase != "after":
            raise ValueError("recover_within belongs to the 'after' phase")
        if self.error_rate is not None:
            for v in (self.error_rate.below, self.error_rate.above):
                if v is not None and not 0.0 <= v <= 1.0:
                    raise ValueError("error_rate bounds are fractions between 0 and 1")
        return self


class ExpectedAlert(_Model):
    """An alert that a fault must raise ``within`` its start and clear ``clear_within``
    after it heals. ``fault``: the fault's index in ``faults`` or its ``name``
    (default: the first fault)."""

    alert: str
    within: Duration
    clear_within: Duration | None = None
    fault: int | str | None = None


# ---------------------------------------------------------------- scenario


class Scenario(_Model):
    """One drill: the system and its stack, the load, the fault timeline, what must hold.

    ``system`` names the system under test (its profile: ``payments`` by default, an
    installed profile's name, or ``package.module:PROFILE``). What depends on that system
    — hop, service and action names, the load's operations and params, which invariants
    apply — is checked against its profile when the file is loaded
    (:func:`faultline.scenario.load_scenario`). ``invariants`` left out (or ``all``)
    means every invariant that applies to the system.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=120)
    description: str = ""
    system: str = Field(DEFAULT_SYSTEM, min_length=1, max_length=200)
    seed: int = 0
    stack: Literal["local", "compose", "external"] = "local"
    load: LoadSpec
    faults: list[Fault] = Field(default_factory=list, max_length=200)
    invariants: list[str] | None = None
    slos: list[SLOSpec] = Field(default_factory=list)
    recover_within: Duration | None = None
    expect_alerts: list[ExpectedAlert] = Field(default_factory=list)
    settle: Duration = 30.0
    alert_rules: str | None = None

    @field_validator("invariants", mode="before")
    @classmethod
    def _invariants(cls, v: Any) -> Any:
        if v == "all" or v is None:
            return None  # every invariant that applies to the system (its profile says)
        if isinstance(v, list):
            if "all" in v:
                return None
            out: list[str] = []
            for name in v:
                if name not in INVARIANTS:
                    raise ValueError(
                        f"unknown invariant {name!r}; expected 'all' or any of: {', '.join(INVARIANTS)}"
                    )
                elif name not in out:
                    out.append(name)
            return out
        return v

    @model_validator(mode="after")
    def _cross(self) -> Scenario:
        for i, fault in enumerate(self.faults):
            if fault.at >= self.load.duration:
                raise PydanticCustomError(
                    "scenario_field",
                    "{message}",
                    {
                        "field": ("faults", i, "at"),
                        "message": f"starts at {fault.at:g}s, after the load ends ({self.load.duration:g}s)",
                    },
                )
        names = {f.name for f in self.faults if f.name}
        for i, expect in enumerate(self.expect_alerts):
            ref = expect.fault
            if ref is None and not self.faults:
                bad = "expects an alert but the scenario has no faults"
            elif isinstance(ref, int) and not 0 <= ref < len(self.faults):
                bad = f"fault index {ref} out of range (the scenario has {len(self.faults)} faults)"
            elif isinstance(ref, str) and ref not in names:
                bad = f"no fault named {ref!r}; named faults: {', '.join(sorted(names)) or 'none'}"
            else:
                continue
            raise PydanticCustomError(
                "scenario_field", "{message}", {"field": ("expect_alerts", i, "fault"), "message": bad}
            )
        return self

    def with_overrides(self, *, seed: int | None = None, duration: Any = None) -> Scenario:
        """A copy with the CLI's ``--seed`` / ``--duration`` applied (re-validated)."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        if seed is not None:
            data["seed"] = seed
        if duration is not None:
            data["load"]["duration"] = parse_duration(duration)
        return Scenario.model_validate(data)

    @property
    def checks(self) -> list[str]:
        """The invariants this drill checks (resolved against the profile on load)."""
        return list(self.invariants or ())
