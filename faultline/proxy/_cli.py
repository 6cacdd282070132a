"""``faultline proxy ...``: the server, and toxiproxy-cli's basic commands.

::

    faultline proxy serve [--host 127.0.0.1] [--port 8474] [--config toxiproxy.json]
                          [--seed N] [--events-file events.jsonl]
                          [--api-token-file PATH] [--allow-remote-listen]
                          [--max-proxies 256] [--max-toxics 64]
    faultline proxy list | inspect NAME
    faultline proxy create NAME -l 127.0.0.1:0 -u 127.0.0.1:5432
    faultline proxy toggle NAME | delete NAME | reset
    faultline proxy toxic add NAME -t latency [-n NAME] [-s upstream] [--tox 0.5]
                              [--scope exchange] -a latency=100
    faultline proxy toxic update NAME -n latency_downstream [--tox 1] -a latency=200
    faultline proxy toxic remove NAME -n latency_downstream    (prints what it did)
    faultline proxy seed N [--label drill-name]

The client commands send ``Authorization: Bearer $FAULTLINE_PROXY_TOKEN`` when set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``proxy`` subcommand and its own subcommands."""
    proxy = subparsers.add_parser(
        "proxy", help="Toxiproxy-compatible fault proxy: server and client commands",
        description="Toxiproxy-compatible fault proxy.",
    )
    proxy.set_defaults(func=lambda args: _usage(proxy))
    sub = proxy.add_subparsers(dest="proxy_command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the proxy server (Toxiproxy HTTP API)")
    serve.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8474, help="API port (0 picks a free one)")
    serve.add_argument("--config", help="toxiproxy.json to load at start")
    serve.add_argument("--seed", type=int, help="make jitter, toxicity and slicing reproducible")
    serve.add_argument("--events-file", help="append one JSON line per fault event")
    serve.add_argument("--api-token-file", metavar="PATH",
                       help="require 'Authorization: Bearer <token>' (the file's content); "
                            "default: $FAULTLINE_PROXY_TOKEN if set, else no token")
    serve.add_argument("--allow-remote-listen", action="store_true",
                       help="let the API and the proxies listen on non-loopback addresses")
    serve.add_argument("--max-proxies", type=int, default=256, help="default 256")
    serve.add_argument("--max-toxics", type=int, default=64, help="per proxy; default 64")
    serve.set_defaults(func=_serve)

    def client_parser(name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_)
        p.add_argument("--url", default=None,
                       help="API URL (default $TOXIPROXY_URL or http://127.0.0.1:8474)")
        return p

    client_parser("list", "list proxies").set_defaults(func=_list)
    p = client_parser("inspect", "show one proxy and its toxics")
    p.add_argument("name")
    p.set_defaults(func=_inspect)
    p = client_parser("create", "create a proxy")
    p.add_argument("name")
    p.add_argument("-l", "--listen", default="127.0.0.1:0")
    p.add_argument("-u", "--upstream", required=True)
    p.set_defaults(func=_create)
    p = client_parser("toggle", "enable a disabled proxy, disable an enabled one")
    p.add_argument("name")
    p.set_defaults(func=_toggle)
    p = client_parser("delete", "delete a proxy")
    p.add_argument("name")
    p.set_defaults(func=_delete)
    client_parser("reset", "enable every proxy, remove every toxic").set_defaults(func=_reset)
    p = client_parser("seed", "set the seed every random decision derives from")
    p.add_argument("seed", type=int)
    p.add_argument("--label", default=None, help="free text, e.g. the drill's name")
    p.set_defaults(func=_seed)

    toxic = sub.add_parser("toxic", help="add, update or remove toxics")
    toxic.set_defaults(func=lambda args: _usage(toxic))
    toxic_sub = toxic.add_subparsers(dest="toxic_command", metavar="COMMAND")
    for name, func in (("add", _toxic_add), ("update", _toxic_update), ("remove", _toxic_remove)):
        t = toxic_sub.add_parser(name, help=f"{name} a toxic")
        t.add_argument("proxy")
        t.add_argument("--url", default=None)
        t.add_argument("-n", "--toxic-name", default=None)
        if name == "add":
            t.add_argument("-t", "--type", required=True)
            t.add_argument("-s", "--stream", default="downstream",
                           choices=("upstream", "downstream"))
            t.add_argument("-u", "--upstream", dest="stream", action="store_const",
                           const="upstream", help="same as --stream upstream")
            t.add_argument("-d", "--downstream", dest="stream", action="store_const",
                           const="downstream", help="same as --stream downstream")
        if name != "remove":
            t.add_argument("--tox", "--toxicity", dest="toxicity", type=float, default=None)
            t.add_argument("--scope", choices=("connection", "exchange"), default=None,
                           help="roll toxicity per connection (default) or per exchange")
            t.add_argument("-a", "--attribute", action="append", default=[],
                           metavar="KEY=VALUE", help="repeatable; numbers are parsed")
        t.set_defaults(func=func)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 4


def _fail(message: str) -> int:
    print(f"faultline proxy: {message}", file=sys.stderr)
    return 1


def _client(args: argparse.Namespace) -> Any:
    from faultline.proxy.client import ProxyClient

    return ProxyClient(args.url or os.environ.get("TOXIPROXY_URL"))


def _guarded(action: Any) -> Any:
    """Run a client action; API errors print as one line and exit 1."""
    from faultline.proxy.client import ProxyAPIError

    def run(args: argparse.Namespace) -> int:
        try:
            return int(action(args) or 0)
        except ProxyAPIError as exc:
            return _fail(str(exc))
        except ValueError as exc:
            return _fail(str(exc))

    return run


def _serve(args: argparse.Namespace) -> int:
    from faultline.proxy._config import ConfigError
    from faultline.proxy._errors import APIError
    from faultline.proxy._server import ProxyServer

    token = os.environ.get("FAULTLINE_PROXY_TOKEN") or None
    if args.api_token_file:
        try:
            with open(args.api_token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            return _fail(f"cannot read --api-token-file {args.api_token_file}: "
                         f"{exc.strerror or exc}")
        if not token:
            return _fail(f"--api-token-file {args.api_token_file} is empty")
    try:
        server = ProxyServer(args.host, args.port, args.seed, config=args.config,
                             events_file=args.events_file, api_token=token,
                             allow_remote_listen=args.allow_remote_listen,
                             max_proxies=args.max_proxies, max_toxics=args.max_toxics)
    except ValueError as exc:
        return _fail(str(exc))

    def ready(s: ProxyServer) -> None:
        auth = ", token required" if s.policy.api_token else ""
        print(f"faultline proxy: API listening on {s.url} (seed {s.seed}{auth})", flush=True)

    try:
        server.run(on_ready=ready)
    except (ConfigError, APIError, OSError) as exc:
        return _fail(str(exc))
    return 0


def _print_proxy(proxy: dict[str, Any]) -> None:
    state = "enabled" if proxy["enabled"] else "disabled"
    print(f"{proxy['name']:<24} {proxy['listen']:<22} -> {proxy['upstream']:<22} {state:<8} "
          f"toxics: {len(proxy.get('toxics') or [])}")


@_guarded
def _list(args: argparse.Namespace) -> int:
    proxies = _client(args).proxies()
    if not proxies:
        print("no proxies")
    for name in sorted(proxies):
        _print_proxy(proxies[name])
    return 0


@_guarded
def _inspect(args: argparse.Namespace) -> int:
    proxy = _client(args).get_proxy(args.name)
    _print_proxy(proxy)
    for toxic in proxy.get("toxics") or []:
        print(f"  {toxic['name']}: type={toxic['type']} stream={toxic['stream']} "
              f"toxicity={toxic['toxicity']} attributes={json.dumps(toxic['attributes'])}")
    return 0


@_guarded
def _create(args: argparse.Namespace) -> int:
    proxy = _client(args).create_proxy(args.name, listen=args.listen, upstream=args.upstream)
    print(f"created proxy {proxy['name']} listening on {proxy['listen']}")
    return 0


@_guarded
def _toggle(args: argparse.Namespace) -> int:
    client = _client(args)
    proxy = client.get_proxy(args.name)
    proxy = client.update_proxy(args.name, enabled=not proxy["enabled"])
    print(f"proxy {proxy['name']} is now {'enabled' if proxy['enabled'] else 'disabled'}")
    return 0


@_guarded
def _delete(args: argparse.Namespace) -> int:
    _client(args).delete_proxy(args.name)
    print(f"deleted proxy {args.name}")
    return 0


@_guarded
def _reset(args: argparse.Namespace) -> int:
    _client(args).reset()
    print("all proxies enabled, all toxics removed")
    return 0


def _attributes(pairs: list[str]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"attribute {pair!r} is not KEY=VALUE")
        try:
            attrs[key] = json.loads(value)
        except ValueError:
            attrs[key] = value
    return attrs


@_guarded
def _seed(args: argparse.Namespace) -> int:
    answer = _client(args).set_seed(args.seed, label=args.label)
    print(f"seed {answer['seed']} set" + (f" ({answer['label']})" if answer.get("label") else ""))
    return 0


@_guarded
def _toxic_add(args: argparse.Namespace) -> int:
    toxic = _client(args).add_toxic(
        args.proxy, type=args.type, stream=args.stream or "downstream",
        toxicity=1.0 if args.toxicity is None else args.toxicity,
        name=args.toxic_name, attributes=_attributes(args.attribute), scope=args.scope,
    )
    print(f"added {toxic['stream']} {toxic['type']} toxic {toxic['name']!r} on {args.proxy}")
    return 0


@_guarded
def _toxic_update(args: argparse.Namespace) -> int:
    if not args.toxic_name:
        raise ValueError("toxic update needs -n/--toxic-name")
    toxic = _client(args).update_toxic(
        args.proxy, args.toxic_name, toxicity=args.toxicity,
        attributes=_attributes(args.attribute) if args.attribute else None, scope=args.scope,
    )
    print(f"updated toxic {toxic['name']!r} on {args.proxy}")
    return 0


@_guarded
def _toxic_remove(args: argparse.Namespace) -> int:
    if not args.toxic_name:
        raise ValueError("toxic remove needs -n/--toxic-name")
    report = _client(args).remove_toxic(args.proxy, args.toxic_name, effect=True)
    print(f"removed toxic {args.toxic_name!r} from {args.proxy}")
    if report is not None:
        print(f"  seen: {json.dumps(report['seen'])}\n  effect: {json.dumps(report['effect'])}")
    return 0
