"""Seeds derived from one exploration seed, stable across processes and Python versions.

Every random decision of an exploration comes from ``--seed``: drill ``i`` draws from a
generator seeded with ``derive_seed("draw", seed, i)``, so drill 7 is the same drill
whatever drills 1-6 did (and whether they failed); the k tries of a shrink candidate
use seeds derived from the failing drill's seed. ``hash()`` is salted per process, so a
cryptographic hash of the parts is used instead.
"""

from __future__ import annotations

import hashlib

__all__ = ["SEED_BITS", "derive_seed", "try_seeds"]

#: scenario seeds stay in 31 bits (every consumer takes them: Locust, the proxy, YAML)
SEED_BITS = 31


def derive_seed(*parts: object) -> int:
    """A seed in ``[0, 2**31)`` determined by ``parts`` alone."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


def try_seeds(seed: int, tries: int) -> list[int]:
    """The seeds of the ``tries`` runs of one shrink candidate: the failing drill's own
    seed first (the failure was seen with it), then seeds derived from it."""
    return [seed, *(derive_seed("try", seed, j) for j in range(1, tries))]
