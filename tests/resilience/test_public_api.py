"""The public surface is pinned; importing it pulls in no third-party package."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import resilience


def test_all_is_sorted_and_equals_public_names() -> None:
    public = {
        name
        for name in dir(resilience)
        if not name.startswith("_")
        and name.isidentifier()  # pytest's assertion rewriting may add '@py_builtins'
        and name not in {"annotations", "importlib", "TYPE_CHECKING", "Any", "testing"}
    }
    public |= set(resilience._LAZY)
    assert resilience.__all__ == sorted(resilience.__all__)
    assert set(resilience.__all__) == public


def test_contract_names_exist() -> None:
    for name in [
        "CircuitBreaker",
        "Retry",
        "retry",
        "Timeout",
        "Bulkhead",
        "RateLimiter",
        "Fallback",
        "Hedge",
        "Pipeline",
        "ResilienceError",
        "RejectedError",
        "CircuitOpenError",
        "BulkheadFullError",
        "TimeoutRejectedError",
        "RateLimitedError",
        "BreakerStateChanged",
        "BreakerStoreDegraded",
        "RedisBreakerStore",
        "AsyncRedisBreakerStore",
    ]:
        assert name in resilience.__all__


def test_import_pulls_no_third_party_package() -> None:
    code = (
        "import sys; before = set(sys.modules); import resilience, resilience.testing; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "bad = new & {'redis', 'prometheus_client', 'pybreaker', 'tenacity', 'locust', 'gevent'}; "
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        resilience.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_py_typed_marker_ships() -> None:
    assert (Path(resilience.__file__).parent / "py.typed").exists()


def test_every_public_name_has_a_docstring() -> None:
    for name in resilience.__all__:
        obj = getattr(resilience, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, name


def test_decorators_keep_signatures() -> None:
    breaker = resilience.CircuitBreaker("sig")

    @breaker
    def pay(amount: int, *, currency: str = "EUR") -> str:
        """Pay."""
        return f"{amount} {currency}"

    @resilience.retry(on=OSError)
    async def refund(amount: int) -> int:
        return amount

    assert str(inspect.signature(pay)) == "(amount: 'int', *, currency: 'str' = 'EUR') -> 'str'"
    assert pay.__name__ == "pay"
    assert pay.__doc__ == "Pay."
    assert inspect.iscoroutinefunction(refund)
    assert pay(5) == "5 EUR"


TYPED_SAMPLE = """
from resilience import CircuitBreaker, Pipeline, Retry, Timeout, retry

breaker = CircuitBreaker("x")
pipeline = Pipeline(Retry(on=OSError), breaker, Timeout(1.0))

@pipeline
def pay(amount: int, currency: str = "EUR") -> str:
    return currency

@retry(on=OSError)
async def refund(amount: int) -> int:
    return amount

async def main() -> None:
    a: str = pay(1)
    b: int = await refund(2)
    c: str = breaker.call(pay, 3, currency="USD")
    d: int = await pipeline.call_async(refund, 4)
    reveal_type(pay)
"""


def test_mypy_sees_kept_signatures(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(TYPED_SAMPLE)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(sample)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(resilience.__file__).parent.parent,
    )
    assert "def (amount: int, currency: str =) -> str" in out.stdout, out.stdout
    assert "Success" in out.stdout, out.stdout
