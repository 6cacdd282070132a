"""One seed for every random decision of the proxy, and how each decision is numbered.

A drill replays its faults only if every random choice the proxy made can be drawn
again: toxicity rolls (per connection or per exchange), latency jitter, slicer sizes,
``http_error``'s per-request rolls. Numbering those choices by connection ordinal (as
the proxy first did) cannot be replayed on a long-lived server that the drills of one
invocation share: pooled connections survive from one drill to the next, so the
ordinals a drill meets depend on everything that ran before it.

So every decision is numbered by the *toxic* that makes it, counting from the moment
the toxic was added or the seed was last set (``POST /seed``), and drawn as a pure
function of ``(seed, proxy name, toxic name, scope, n)``:

- the n-th connection roll of a toxic draws ``decision(seed, proxy, toxic, "connection", n)``
  (a connection it attaches to, in order of arrival; pooled connections that are open
  when a toxic is added are taken oldest first);
- the n-th exchange it rolls for draws ``decision(..., "exchange", n)``;
- ``http_error``'s n-th request draws ``decision(..., "request", n)``;
- the toxic's n-th connection gets its own RNG, ``stub_rng(seed, proxy, toxic, n)``,
  for jitter and slice sizes on that connection.

A decision is a keyed hash (BLAKE2b), not a draw from a shared stream, so it does not
depend on the order in which other toxics or connections drew theirs. A server started
without ``--seed`` picks one from the OS and reports it (``GET /seed``, the
``server_started`` event), so even an unplanned run can be replayed.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from time import monotonic
from typing import Any

__all__ = ["SEED_LIMIT", "Seeding", "decision", "stub_rng"]

#: seeds are JSON integers that every client can represent exactly (int64)
SEED_LIMIT = 2**63
_SCALE = 1.0 / 2**64


def decision(seed: int, proxy: str, toxic: str, scope: str, n: int) -> float:
    """The n-th decision of ``toxic`` in ``scope``: a number in [0, 1), the same every run."""
    key = f"{seed}\x1f{proxy}\x1f{toxic}\x1f{scope}\x1f{n}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") * _SCALE


def stub_rng(seed: int, proxy: str, toxic: str, n: int) -> random.Random:
    """The RNG of a toxic on its n-th connection (jitter, slice sizes)."""
    return random.Random(f"{seed}\x1f{proxy}\x1f{toxic}\x1fstub\x1f{n}")


class Seeding:
    """The server's current seed, with the label of who set it (e.g. the drill's name).

    ``epoch`` counts the seeds set; a toxic numbers its decisions from zero again when
    the epoch changes.
    """

    __slots__ = ("epoch", "label", "seed", "set_mono", "source")

    def __init__(self, seed: int | None) -> None:
        self.source = "--seed" if seed is not None else "generated"
        self.seed = seed if seed is not None else secrets.randbelow(SEED_LIMIT)
        self.label: str | None = None
        self.epoch = 0
        self.set_mono = monotonic()

    def set(self, seed: int, label: str | None) -> None:
        """A new seed: every decision from now on derives from it."""
        self.seed = seed
        self.label = label
        self.source = "POST /seed"
        self.epoch += 1
        self.set_mono = monotonic()

    def to_json(self) -> dict[str, Any]:
        """``GET /seed``'s answer."""
        return {"seed": self.seed, "label": self.label, "source": self.source,
                "epoch": self.epoch, "set_mono": self.set_mono}
