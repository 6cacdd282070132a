"""The seam between the drill engine and a system under test.

Everything specific to one system sits behind a :class:`SystemProfile`: its launchers,
hops, services, workload (the Jepsen client), snapshot, settle probe, invariants,
deliberate bugs and system-specific faults (:class:`Action`). The engine imports no
system: it finds profiles by name (:func:`load_profile`), through the
``faultline.systems`` entry points or a ``module:attribute`` path.
"""

from ._lookup import DEFAULT_SYSTEM, ProfileError, available_systems, load_profile
from ._profile import (
    PROCESS_FAULTS,
    Action,
    DictSink,
    Hop,
    Service,
    StateSink,
    SystemProfile,
    Workload,
)

__all__ = [
    "DEFAULT_SYSTEM",
    "PROCESS_FAULTS",
    "Action",
    "DictSink",
    "Hop",
    "ProfileError",
    "Service",
    "StateSink",
    "SystemProfile",
    "Workload",
    "available_systems",
    "load_profile",
]
