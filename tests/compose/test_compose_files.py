"""The payments compose files keep their promises, and ship with the package (no engine
needed; runs in the main suite)."""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from faultline.stack import StackError
from faultline.stack._compose import ComposeStack
from faultline.system import load_profile
from payments.drill._compose import (
    COMPOSE_DIR,
    COMPOSE_SERVICES,
    METRICS,
    PORTS,
    compose_hops,
    compose_spec,
)
from payments.drill._topology import HOPS, SERVICES

REPO = Path(__file__).resolve().parents[2]
APP = ("api", "relay", "worker-1", "worker-2")
#: contracts §3: which proxy each app service's URL must go through
EXPECTED_HOPS = {
    ("api", "PAYMENTS_DATABASE_URL"): "api_postgres",
    ("api", "PAYMENTS_REDIS_URL"): "api_redis",
    ("api", "PAYMENTS_RISK_URL"): "api_risk",
    ("relay", "PAYMENTS_DATABASE_URL"): "relay_postgres",
    ("relay", "PAYMENTS_REDIS_URL"): "relay_redis",
    ("worker-1", "PAYMENTS_DATABASE_URL"): "worker_postgres",
    ("worker-1", "PAYMENTS_REDIS_URL"): "worker_redis",
    ("worker-2", "PAYMENTS_DATABASE_URL"): "worker_postgres",
    ("worker-2", "PAYMENTS_REDIS_URL"): "worker_redis",
}


def _services() -> dict:
    return yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())["services"]


def _proxies(path: Path) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(path.read_text())}


def test_every_app_hop_is_routed_through_toxiproxy() -> None:
    services = _services()
    proxies = _proxies(COMPOSE_DIR / "toxiproxy.json")
    by_port = {int(p["listen"].rsplit(":", 1)[1]): name for name, p in proxies.items()}
    for (service, var), hop in EXPECTED_HOPS.items():
        url = urlsplit(services[service]["environment"][var])
        assert url.hostname == "toxiproxy", (service, var, url)
        assert by_port[url.port] == hop, (service, var, url.port)
    assert set(proxies) == set(EXPECTED_HOPS.values())
    upstream_host = {name: p["upstream"].split(":")[0] for name, p in proxies.items()}
    assert upstream_host == {name: name.split("_")[1] for name in proxies}


def test_the_proxies_are_the_profiles_hops_without_the_replica() -> None:
    proxies = set(_proxies(COMPOSE_DIR / "toxiproxy.json"))
    hops = compose_hops()
    assert set(hops.values()) == proxies  # every proxy is a hop of the profile
    assert hops == {h.name: h.proxy for h in HOPS if "replica" not in (h.source, h.target)}


def test_host_proxy_config_mirrors_the_public_one_on_loopback() -> None:
    public = _proxies(COMPOSE_DIR / "toxiproxy.json")
    host = _proxies(COMPOSE_DIR / "toxiproxy.host.json")
    assert set(public) == set(host)
    env = dict(line.split("=", 1) for line in
               (REPO / "compose" / "ci" / "compose.env").read_text().splitlines()
               if line and not line.startswith("#"))
    ports = {"postgres": env["FAULTLINE_POSTGRES_PORT"], "redis": env["FAULTLINE_REDIS_PORT"],
             "risk": env["FAULTLINE_RISK_PORT"]}
    for name, proxy in host.items():
        assert proxy["listen"] == "127.0.0.1:" + public[name]["listen"].rsplit(":", 1)[1]
        hostname = public[name]["upstream"].split(":")[0]
        assert proxy["upstream"] == f"{hostname}:{ports[hostname]}"


def test_images_default_to_the_public_ones_and_ports_bind_loopback() -> None:
    services = _services()
    assert services["postgres"]["image"] == "${FAULTLINE_POSTGRES_IMAGE:-postgres:16}"
    assert services["redis"]["image"] == "${FAULTLINE_REDIS_IMAGE:-redis:7}"
    assert services["toxiproxy"]["image"].startswith(
        "${FAULTLINE_TOXIPROXY_IMAGE:-ghcr.io/shopify/toxiproxy")
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        if name != "migrate":
            assert "healthcheck" in service, name
    for name in APP:
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["toxiproxy"] == {"condition": "service_healthy"}
    build = services["migrate"]["build"]  # the app image, from a source checkout
    assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == (
        REPO / "compose" / "Dockerfile")


def test_host_override_puts_every_service_on_the_host_network() -> None:
    override = yaml.safe_load((COMPOSE_DIR / "compose.host.yaml").read_text())["services"]
    assert set(override) == set(_services())
    for name, service in override.items():
        assert service["network_mode"] == "host", name
        assert all(re.fullmatch(r"[a-z]+:127\.0\.0\.1", h) for h in service["extra_hosts"]), name
    mounts = override["toxiproxy"]["volumes"]
    assert mounts == ["./toxiproxy.host.json:/config/toxiproxy.json:ro"]


def test_the_spec_matches_the_compose_file() -> None:
    text = (COMPOSE_DIR / "compose.yaml").read_text()
    services = _services()
    variables = set(re.findall(r"\$\{FAULTLINE_(\w+)_PORT", text))
    assert variables == {name.upper() for name in PORTS}
    assert set(COMPOSE_SERVICES) <= set(services)
    assert set(COMPOSE_SERVICES) <= {s.name for s in SERVICES}
    assert set(METRICS) <= set(services)
    for service, port in METRICS.items():  # each app listens on its metrics port setting
        env = services[service]["environment"]
        assert env["PAYMENTS_PORT"] == f"${{FAULTLINE_{port.upper()}_PORT:-{PORTS[port]}}}"
    spec = compose_spec(bugs=["relay_drops_on_error", "outbox_outside_tx"])
    assert spec.one_shot <= set(services)
    assert spec.workload is not None
    assert spec.workload.service in services
    assert all(f.is_file() for f in (*spec.files, *spec.host_network_files))
    # bugs reach every app container through the compose file's PAYMENTS_BUGS
    assert spec.env == {"PAYMENTS_BUGS": "relay_drops_on_error,outbox_outside_tx"}
    for name in ("migrate", "risk", *APP):
        assert services[name]["environment"]["PAYMENTS_BUGS"] == "${PAYMENTS_BUGS:-}", name


def test_the_profile_runs_on_compose(tmp_path: Path) -> None:
    profile = load_profile("payments")
    stack = profile.launcher("compose", run_dir=tmp_path, bugs=["relay_drops_on_error"])
    assert isinstance(stack, ComposeStack)
    assert stack.controls == {"kill", "pause", "restart"}
    assert stack._environ()["PAYMENTS_BUGS"] == "relay_drops_on_error"
    with pytest.raises(StackError, match="unknown bug"):
        profile.launcher("compose", run_dir=tmp_path, bugs=["no_such_bug"])


def test_the_compose_files_are_package_data() -> None:
    """setuptools ships payments/drill/compose/ in the wheel: a (namespace) package found
    by pyproject's package discovery, every file matching its package-data patterns."""
    from setuptools import find_namespace_packages

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = find_namespace_packages(where=str(REPO), **config["packages"]["find"])
    assert "payments.drill.compose" in found
    patterns = config["package-data"]["*"]
    for path in COMPOSE_DIR.iterdir():
        assert any(fnmatch(path.name, p) for p in patterns), path.name


def test_the_repository_compose_file_includes_the_packaged_one() -> None:
    root = yaml.safe_load((REPO / "compose" / "docker-compose.yml").read_text())
    assert [(REPO / "compose" / p).resolve() for p in root["include"]] == [
        COMPOSE_DIR / "compose.yaml"]
