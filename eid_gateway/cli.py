"""``eid-gateway``: the one command line entry point (serve, init, check-config, metadata, verify, ...)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from certs.devpki import DevPkiExists
from eid_gateway.config import ConfigError, GatewayConfig, default_config_path, load_config
from eid_gateway.instance import write_example_config

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_USAGE = 64
EXIT_EXISTS = 73
#: serve, simulator, demo-service: the port is taken (the same code as a failed start of the workers).
EXIT_CANNOT_LISTEN = 1


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line. Messages are the gateway's own key=value lines (no personal data)."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            entry["worker"] = self.worker
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str, worker: int | None = None) -> None:
    """Log to stderr; a worker process (``serve --workers N``) names itself in every line."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonLogFormatter(worker))
    else:
        tag = "" if worker is None else f"worker={worker} "
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s {tag}%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


# --- commands ---------------------------------------------------------------------------------------------


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if args.config else default_config_path()


def _load(args: argparse.Namespace, err: TextIO) -> GatewayConfig | None:
    path = _config_path(args)
    try:
        return load_config(path)
    except ConfigError as exc:
        err.write(f"{path}: configuration is not valid:\n")
        for line in exc.errors:
            err.write(f"  - {line}\n")
        return None


def _cmd_init(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    directory = Path(args.dir)
    origin = args.origin or f"http://127.0.0.1:{args.port}"
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        err.write("error: --origin must look like http://127.0.0.1:8080 or https://eid.example.de\n")
        return EXIT_USAGE
    try:
        path = write_example_config(directory, origin, args.port, force=args.force)
    except (FileExistsError, DevPkiExists) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_EXISTS
    out.write(f"wrote {path} and development keys in {directory / 'certs'}\n")
    out.write(f"start with: eid-gateway serve --config {path}\n")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = _load(args, err)
    if config is None:
        return EXIT_CONFIG
    if config.eid_server.authorization_certificate is not None:
        import datetime

        from eid_gateway.backends.authorization import Level, check_authorization

        findings = check_authorization(
            config.eid_server.authorization_certificate, config.services.services, datetime.date.today()
        )
        for finding in findings:
            if finding.level is Level.WARNING:
                err.write(f"warning: {finding}\n")
        problems = [f for f in findings if f.level is Level.ERROR]
        if problems:
            err.write("configuration is not valid:\n" + "".join(f"  - {f}\n" for f in problems))
            return EXIT_CONFIG
    out.write(
        f"configuration OK: mode={config.mode} origin={config.public_origin} "
        f"eid_server={config.eid_server.kind} services={len(config.services.services)}\n"
    )
    return EXIT_OK


def _serve(app_factory: str, args: argparse.Namespace, err: TextIO, *, workers_allowed: bool = False) -> int:
    """Run one app; ``workers_allowed`` (``serve`` only): several processes when --workers / listen.workers
    ask for them."""
    os.umask(0o077)  # every file the server writes (store, WAL, audit copy, metrics files) is the owner's only
    configure_logging(str(args.log_level), str(args.log_format))
    config = _load(args, err)
    if config is None:
        return EXIT_CONFIG
    host = args.host or config.listen.host
    port = args.port or config.listen.port
    workers: int = (args.workers or config.listen.workers) if workers_allowed else 1
    if workers > 1:
        return _serve_workers(args, config, host, port, workers, err)
    from eid_gateway.ports import port_in_use
    from eid_gateway.web.connections import run_app

    problem = port_in_use(host, port)  # one clean line (as with --workers), not a traceback
    if problem is not None:
        err.write(f"error: cannot listen on {problem} (listen.host / listen.port, --host / --port)\n")
        return EXIT_CANNOT_LISTEN

    app, guard = _build_app(app_factory, config)
    run_app(app, host, port, guard)
    return EXIT_OK


def _build_app(app_factory: str, config: GatewayConfig) -> tuple[web.Application, ConnectionGuard]:
    """The app and the guard of its connections: slow and surplus connections are cut off where they are
    accepted and read ([listen])."""
    from eid_gateway import app as app_module
    from eid_gateway.web.connections import ConnectionGuard

    app: web.Application = getattr(app_module, app_factory)(config)
    app.on_startup.append(_freeze_startup_heap)  # after the app's own startup hooks
    return app, ConnectionGuard(config.listen, config.limits.trusted_proxies, hsts=config.production)


def _serve_workers(
    args: argparse.Namespace, config: GatewayConfig, host: str, port: int, workers: int, err: TextIO
) -> int:
    """``serve --workers N`` under gunicorn: the config was read and found valid once here; each worker
    reads it again after the fork (and loads its own keys), because key handles and store connections do
    not survive a fork."""
    from eid_gateway.config import single_process_reasons
    from eid_gateway.ports import port_in_use
    from eid_gateway.workers import Served, serve

    reasons = single_process_reasons(config.eid_server.kind, simulator=config.simulator, demo=config.demo)
    if reasons:
        err.write(f"error: --workers / listen.workers = {workers}: must be 1 because\n")
        err.write("".join(f"  - {reason}\n" for reason in reasons))
        return EXIT_CONFIG
    problem = port_in_use(host, port)
    if problem is not None:
        err.write(f"error: cannot listen on {problem} (listen.host / listen.port, --host / --port)\n")
        return EXIT_CANNOT_LISTEN

    def start_worker(index: int) -> Served | None:
        configure_logging(str(args.log_level), str(args.log_format), index)
        own = _load(args, err)  # the file may have changed since; None: the errors are written
        if own is None:
            return None
        return Served(*_build_app("create_app", own))

    return serve(start_worker, host, port, workers, log_level=str(args.log_level))


async def _freeze_startup_heap(app: object) -> None:
    """Move everything allocated until now (modules, configuration, keys) out of the collector's reach.

    Those objects live as long as the process; without this every full collection walks them all again,
    a pause of tens of milliseconds that lands on whichever requests are in flight.
    """
    import gc

    gc.collect()
    gc.freeze()


def _cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _serve("create_app", args, err, workers_allowed=True)


def _cmd_simulator(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _serve("create_simulator_app", args, err)


def _cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _serve("create_demo_only_app", args, err)


def _cmd_metadata(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = _load(args, err)
    if config is None:
        return EXIT_CONFIG
    from eid_gateway.frontends import saml_idp

    xml: bytes = saml_idp.idp_metadata(config)
    out.write(xml.decode("utf-8"))
    if not xml.endswith(b"\n"):
        out.write("\n")
    return EXIT_OK


def _cmd_client_secret(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """A new OIDC client secret, printed once with the hash line for ``[services.oidc]``; the gateway
    keeps only the hash, so nothing is stored here (rotation: run again, replace the hash, reload)."""
    from eid_gateway.frontends.oidc.client_secret import hash_client_secret, new_client_secret

    secret = new_client_secret()
    out.write(f"client secret (give it to the service; shown only now, not stored anywhere): {secret}\n")
    out.write("for its [services.oidc] table (token_endpoint_auth_method client_secret_basic or _post):\n")
    out.write(f'client_secret_hash = "{hash_client_secret(secret)}"\n')
    return EXIT_OK


EXIT_AUDIT_BROKEN = 1

if TYPE_CHECKING:
    from aiohttp import web

    from eid_gateway.store.base import AuditEntry
    from eid_gateway.web.connections import ConnectionGuard


async def _audit_entries(config: GatewayConfig, files: Sequence[Path]) -> tuple[list[AuditEntry], int | None]:
    """The records (from the store or the given JSON-lines files) and the store's high-water mark."""
    from eid_gateway.app import create_store
    from eid_gateway.audit import read_all, read_jsonl

    if files:
        return read_jsonl(files), None
    store = create_store(config)
    try:
        entries = [e async for e in read_all(store)]
        tail = await store.audit_tail()
        return entries, tail.seq if tail is not None else None
    finally:
        await store.close()


def _read_audit(
    config: GatewayConfig, files: Sequence[Path], err: TextIO
) -> tuple[list[AuditEntry], int | None] | None:
    """:func:`_audit_entries`, or ``None`` after telling ``err`` why the trail cannot be read."""
    import asyncio

    from eid_gateway.store.base import StoreError

    try:
        return asyncio.run(_audit_entries(config, files))
    except (OSError, StoreError, ValueError, KeyError) as exc:
        err.write(f"error: cannot read the audit trail ({type(exc).__name__}: {exc})\n")
        return None


def _audit_key(config: GatewayConfig) -> bytes:
    from eid_gateway.audit import derive_audit_key

    return config.audit.secret or derive_audit_key(config.keys.pseudonym_secret)


def _cmd_audit_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from eid_gateway.audit import verify_chain

    config = _load(args, err)
    if config is None:
        return EXIT_CONFIG
    trail = _read_audit(config, args.file, err)
    if trail is None:
        return EXIT_CONFIG
    entries, high_water = trail
    report = verify_chain(entries, _audit_key(config))
    problems = list(report.problems)
    if high_water is not None and high_water > report.last_seq:
        problems.append(f"records {report.last_seq + 1}..{high_water} are missing (the trail was cut short)")
    source = ", ".join(str(f) for f in args.file) if args.file else f"store ({config.store.kind})"
    if problems:
        err.write(f"audit trail BROKEN in {source}: {len(problems)} problem(s) in {report.records} records\n")
        for p in problems:
            err.write(f"  - {p}\n")
        return EXIT_AUDIT_BROKEN
    out.write(
        f"audit trail OK in {source}: {report.records} records; last seq={report.last_seq} mac={report.last_mac}\n"
    )
    return EXIT_OK


def _cmd_audit_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from eid_gateway.audit import keyed_hash, parse_since, select, verify_chain

    config = _load(args, err)
    if config is None:
        return EXIT_CONFIG
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError:
        err.write("error: --since must be YYYY-MM-DD or an ISO 8601 time\n")
        return EXIT_USAGE
    trail = _read_audit(config, args.file, err)
    if trail is None:
        return EXIT_CONFIG
    entries, _ = trail
    key = _audit_key(config)
    if not verify_chain(entries, key).ok:
        err.write("warning: the audit trail does not verify; run `eid-gateway audit verify`\n")
    subject = keyed_hash(key, "pseudonym", args.pseudonym) if args.pseudonym else None
    for record in select(entries, service=args.service, since=since, subject=subject):
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    return EXIT_OK


def _worker_count(text: str) -> int:
    from eid_gateway.config import MAX_WORKERS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eid-gateway", description=__doc__)
    parser.add_argument(
        "--log-level",
        default=os.environ.get("EID_GATEWAY_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (default: $EID_GATEWAY_LOG_LEVEL or INFO)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get("EID_GATEWAY_LOG_FORMAT", "text"),
        help="json: one object per line for log collectors",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config", help=f"config file (default: ${'{'}EID_GATEWAY_CONFIG{'}'} or {default_config_path()})"
        )

    s = sub.add_parser("serve", help="run the gateway")
    with_config(s)
    s.add_argument("--host", help="address to listen on (default: listen.host of the config)")
    s.add_argument("--port", type=int, help="port to listen on (default: listen.port of the config)")
    s.add_argument(
        "--workers",
        type=_worker_count,
        help="processes sharing the port, e.g. one per core (default: listen.workers, 1)",
    )
    s.set_defaults(func=_cmd_serve)

    i = sub.add_parser("init", help="write an example config and development keys")
    i.add_argument("--dir", default="instance", help="directory for gateway.toml and certs/ (default: instance)")
    i.add_argument("--origin", help="public origin (default http://127.0.0.1:PORT)")
    i.add_argument("--port", type=int, default=8080, help="port written to listen.port (default: 8080)")
    i.add_argument("--force", action="store_true", help="overwrite an existing config and keys")
    i.set_defaults(func=_cmd_init)

    c = sub.add_parser("check-config", help="validate the config; lists every problem")
    with_config(c)
    c.set_defaults(func=_cmd_check)

    cs = sub.add_parser(
        "client-secret",
        help="make an OIDC client secret: prints it once and its client_secret_hash line; stores nothing",
    )
    cs.set_defaults(func=_cmd_client_secret)

    svc = sub.add_parser("service", help="register a city service (SAML SP from its metadata, OIDC client)")
    svc_sub = svc.add_subparsers(dest="service_command", required=True)
    sa = svc_sub.add_parser(
        "add",
        help="a validated [[services]] block from an SP's SAML metadata and/or "
        "for an OIDC client (prints its secret once)",
    )
    from eid_gateway import service_add

    service_add.add_arguments(sa)
    sa.set_defaults(func=service_add.run)

    m = sub.add_parser("metadata", help="print the SAML IdP metadata")
    with_config(m)
    m.set_defaults(func=_cmd_metadata)

    v = sub.add_parser("verify", help="verify a SAML Response (see `eid-gateway verify --help`)", add_help=False)
    v.add_argument("rest", nargs=argparse.REMAINDER, help="the arguments of `python -m saml verify`")
    v.set_defaults(func=None)

    for name, text in (
        ("readers", "show the local card readers (PC/SC); --watch follows changes"),
        ("kiosk-agent", "run the Bürgerbüro kiosk agent (reports reader state to the gateway)"),
        ("kiosk-credential", "make a kiosk credential or a staff password hash for the config"),
        ("kiosk-staff", "add a named staff account of the kiosk dashboard (kiosk-staff add NAME --role view)"),
        ("dev-pki", "write the embedded eID-Server's TEST PKI (CV certificates, description, TLS)"),
        ("smoke-test", "one sign-in with the real AusweisApp, headless (--ausweisapp [--url URL])"),
        ("wallet-sim", "serve the test EUDI wallet and test PID provider (--listen HOST:PORT --dir DIR)"),
    ):  # dispatched before argparse (readers, kiosk-agent: by eid_gateway.entry); listed here for --help
        passthrough = sub.add_parser(name, help=text, add_help=False)
        passthrough.add_argument("rest", nargs=argparse.REMAINDER, help=f"see `eid-gateway {name} --help`")
        passthrough.set_defaults(func=None)

    sim = sub.add_parser("simulator", help="serve only the eID-Server simulator (test facility)")
    with_config(sim)
    sim.add_argument("--host", help="address to listen on (default: listen.host of the config)")
    sim.add_argument("--port", type=int, help="port to listen on (default: listen.port of the config)")
    sim.set_defaults(func=_cmd_simulator)

    d = sub.add_parser("demo-service", help="serve only the demo city service")
    with_config(d)
    d.add_argument("--host", help="address to listen on (default: listen.host of the config)")
    d.add_argument("--port", type=int, help="port to listen on (default: listen.port of the config)")
    d.set_defaults(func=_cmd_demo)

    au = sub.add_parser("audit", help="verify or export the audit trail (data-protection requests)")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    av = au_sub.add_parser("verify", help="check the hash chain: deleted, altered or reordered records")
    with_config(av)
    av.add_argument(
        "--file",
        action="append",
        type=Path,
        default=[],
        help="verify JSON-lines copies instead of the store (repeat for several nodes)",
    )
    av.set_defaults(func=_cmd_audit_verify)
    ae = au_sub.add_parser("export", help="print one service's records as JSON lines")
    with_config(ae)
    ae.add_argument("--service", required=True, help="service id")
    ae.add_argument("--since", help="YYYY-MM-DD or ISO 8601 time (UTC unless an offset is given)")
    ae.add_argument("--pseudonym", help="only the records of this pseudonym (as the service received it)")
    ae.add_argument("--file", action="append", type=Path, default=[], help="read JSON-lines copies instead")
    ae.set_defaults(func=_cmd_audit_export)

    cvc = sub.add_parser("cvc", help="authorization certificates (TR-03110 CV certificates)")
    cvc_sub = cvc.add_subparsers(dest="cvc_command", required=True)
    show = cvc_sub.add_parser("show", help="print a CV certificate: holder, validity, CHAT, description")
    show.add_argument("file", help="CV certificate, binary or hex")
    show.add_argument("--description", help="its certificate description (binary or hex); the hash is checked")
    show.set_defaults(func=_cmd_cvc_show)
    return parser


def _cmd_cvc_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import datetime

    from eid_gateway.backends.authorization import describe_file
    from tr03110.cvc import CvcError

    try:
        lines = describe_file(
            Path(args.file), Path(args.description) if args.description else None, datetime.date.today()
        )
    except CvcError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_CONFIG
    out.write("".join(line + "\n" for line in lines))
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify":
        from saml import cli as saml_cli

        return saml_cli.main(["verify", *argv[1:]], prog="eid-gateway", stdout=out, stderr=err)
    if argv and argv[0] in ("dev-pki", "smoke-test"):
        from eid_gateway.eidserver.cli import dev_pki_main, smoke_test_main

        return (dev_pki_main if argv[0] == "dev-pki" else smoke_test_main)(argv[1:], out, err)
    if argv and argv[0] == "wallet-sim":
        from eid_gateway.wallet_sim.cli import wallet_sim_main

        return wallet_sim_main(argv[1:], out, err)
    if argv and argv[0] == "kiosk-staff":
        from eid_gateway.kiosks.staff_add import staff_main

        return staff_main(argv[1:], out, err)
    if argv and argv[0] == "kiosk-credential":
        from eid_gateway.kiosks.credentials import credential_main

        return credential_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.func is None:  # readers, kiosk-agent: the script's entry (eid_gateway.entry) runs them
        err.write(f"error: run `eid-gateway {argv[0]}` (the eid-gateway script dispatches it, not this module)\n")
        return EXIT_USAGE
    code: int = args.func(args, out, err)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
