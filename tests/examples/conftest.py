"""The examples are not an installed package: make ``examples/`` importable, as their
README tells a team to (``PYTHONPATH=examples``), for this process and its children."""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
