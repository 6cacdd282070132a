"""The compose files keep their promises (no engine needed; runs in the main suite)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
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
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]


def _proxies(path: Path) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(path.read_text())}


def test_every_app_hop_is_routed_through_toxiproxy() -> None:
    services = _services()
    proxies = _proxies(COMPOSE / "toxiproxy.json")
    by_port = {int(p["listen"].rsplit(":", 1)[1]): name for name, p in proxies.items()}
    for (service, var), hop in EXPECTED_HOPS.items():
        url = urlsplit(services[service]["environment"][var])
        assert url.hostname == "toxiproxy", (service, var, url)
        assert by_port[url.port] == hop, (service, var, url.port)
    assert set(proxies) == set(EXPECTED_HOPS.values())
    upstream_host = {name: p["upstream"].split(":")[0] for name, p in proxies.items()}
    assert upstream_host == {name: name.split("_")[1] for name in proxies}


def test_ci_proxy_config_mirrors_the_public_one_on_loopback() -> None:
    public = _proxies(COMPOSE / "toxiproxy.json")
    ci = _proxies(COMPOSE / "ci" / "toxiproxy.host.json")
    assert set(public) == set(ci)
    env = dict(line.split("=", 1) for line in (COMPOSE / "ci" / "compose.env").read_text().splitlines()
               if line and not line.startswith("#"))
    ports = {"postgres": env["FAULTLINE_POSTGRES_PORT"], "redis": env["FAULTLINE_REDIS_PORT"],
             "risk": env["FAULTLINE_RISK_PORT"]}
    for name, proxy in ci.items():
        assert proxy["listen"] == "127.0.0.1:" + public[name]["listen"].rsplit(":", 1)[1]
        host = public[name]["upstream"].split(":")[0]
        assert proxy["upstream"] == f"{host}:{ports[host]}"


def test_images_default_to_the_public_ones_and_ports_bind_loopback() -> None:
    services = _services()
    assert services["postgres"]["image"] == "${FAULTLINE_POSTGRES_IMAGE:-postgres:16}"
    assert services["redis"]["image"] == "${FAULTLINE_REDIS_IMAGE:-redis:7}"
    assert services["toxiproxy"]["image"].startswith("${FAULTLINE_TOXIPROXY_IMAGE:-ghcr.io/shopify/toxiproxy")
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        if name != "migrate":
            assert "healthcheck" in service, name
    for name in APP:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["toxiproxy"] == {"condition": "service_healthy"}


def test_ci_override_puts_every_service_on_the_host_network() -> None:
    override = yaml.safe_load((COMPOSE / "docker-compose.ci.yml").read_text())["services"]
    assert set(override) == set(_services())
    for name, service in override.items():
        assert service["network_mode"] == "host", name
        assert all(re.fullmatch(r"[a-z]+:127\.0\.0\.1", h) for h in service["extra_hosts"]), name
