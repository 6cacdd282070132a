"""Exploration: seeded random drills over a system's fault space, and shrinking.

Listed scenarios find the bugs someone already imagined. ``faultline explore`` draws
drills from the fault space its system profile spans (every hop x toxic x direction,
every service x kill/pause/restart, the system's actions, triggered faults and the
incident patterns real outages are made of), runs them on a reused stack with the
ordinary engine, and shrinks the first failing one to a minimal scenario a person can
read, commit and replay. docs/explore.md is the guide.

API summary::

    from faultline.explore import FaultSpace, DrillGenerator, load_space, Shrinker
    space = FaultSpace.from_profile(load_profile("payments"))
    space = load_space("space.yaml", space)          # SpaceError: file:line: field: why
    drill = DrillGenerator(space, seed=1).draw(3)    # the same drill for the same seed
    drill.data, drill.text()                         # scenario mapping, scenario YAML
    result = Shrinker(run, failure, seed, tries=3).shrink(drill.data)
"""

from ._draw import Drill, DrillGenerator
from ._explore import DrillRun, ExploreOptions, Explorer, ExploreResult, Finding
from ._failure import Failure
from ._folder import ExploreFolder
from ._patterns import PATTERNS, Pattern
from ._seeds import derive_seed, try_seeds
from ._shrink import Shrinker, ShrinkResult, ShrinkStep, Trial
from ._space import FaultSpace, LoadSpace, Range
from ._spacefile import SpaceError, load_space, parse_space

__all__ = [
    "PATTERNS",
    "Drill",
    "DrillGenerator",
    "DrillRun",
    "ExploreFolder",
    "ExploreOptions",
    "ExploreResult",
    "Explorer",
    "Failure",
    "FaultSpace",
    "Finding",
    "LoadSpace",
    "Pattern",
    "Range",
    "ShrinkResult",
    "ShrinkStep",
    "Shrinker",
    "SpaceError",
    "Trial",
    "derive_seed",
    "load_space",
    "parse_space",
    "try_seeds",
]
