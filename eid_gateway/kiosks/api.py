"""Kiosk-facing HTTP handlers: thin adapters from JSON over HTTP to the registry."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from cardreader.model import ModelError, snapshot_from_json
from eid_gateway.kiosks.auth import kiosk_authorized
from eid_gateway.kiosks.keys import REGISTRY, RELOAD
from eid_gateway.kiosks.kiosk_state import Ack
from eid_gateway.kiosks.openapi import openapi_document
from eid_gateway.kiosks.service import SERVICE, KioskService

log = logging.getLogger("eid_gateway.kiosks")

MAX_BODY = 64 * 1024
_INSTANCE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class BadMessage(ValueError):
    pass


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})


async def _read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    body = await request.read()  # chunked bodies are capped by the app's client_max_size
    if len(body) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    if request.content_type != "application/json":
        raise BadMessage("content type must be application/json")
    return parse_json_body(body)


def parse_json_body(body: bytes) -> Any:
    """The JSON document of a kiosk's POST body; :class:`BadMessage` for anything else."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: "[[[[..."
        raise BadMessage("body is not JSON") from None


def parse_envelope(doc: Any) -> tuple[str, int, int, int]:
    """Instance, seq, queue and dropped of a state or heartbeat document; :class:`BadMessage` otherwise."""
    if not isinstance(doc, dict):
        raise BadMessage("body must be a JSON object")
    instance = doc.get("instance")
    if not isinstance(instance, str) or not _INSTANCE.fullmatch(instance):
        raise BadMessage("instance must be 8..64 characters of [A-Za-z0-9_-]")
    out = []
    for name in ("seq", "queue", "dropped"):
        v = doc.get(name, 0)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**53:
            raise BadMessage(f"{name} must be a non-negative integer")
        out.append(v)
    if "seq" not in doc:
        raise BadMessage("seq is required")
    return instance, out[0], out[1], out[2]


async def _authorize(request: web.Request) -> str:
    """The kiosk ID from the path, after its credential was checked (401 otherwise)."""
    if RELOAD in request.app:
        request.app[RELOAD].poll()  # a credential added, rotated or removed counts within CHECK_SECONDS
    registry = request.app[REGISTRY]
    kiosk_id = request.match_info["kiosk_id"]
    rec = registry.records.get(kiosk_id)
    if not kiosk_authorized(request, rec.entry if rec is not None else None):
        registry.counters["auth_failure"] += 1
        await request.app[SERVICE].refused(kiosk_id)  # the refusal is shown on every node
        log.warning("kiosk API: refused credential for kiosk path %r from %s", kiosk_id[:64], request.remote)
        raise web.HTTPUnauthorized(
            text='{"error": "kiosk credential refused"}',
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="eid-gateway kiosks"'},
        )
    return kiosk_id


def _kiosk_message(
    read: Callable[[KioskService, str, Any], Awaitable[Ack]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A kiosk's POST handler: ``read`` parses the JSON body and returns the service's call for it.

    The credential is checked first (401). A body ``read`` cannot parse (:class:`BadMessage`,
    :class:`ModelError`) is counted and answered 400 before anything reaches the service; otherwise the
    call is awaited and its :class:`Ack` is the answer.
    """

    async def handler(request: web.Request) -> web.Response:
        kiosk_id = await _authorize(request)
        try:
            call = read(request.app[SERVICE], kiosk_id, await _read_json(request))
        except (BadMessage, ModelError) as exc:
            request.app[REGISTRY].counters["bad_request"] += 1
            return _error(400, str(exc))
        ack = await call
        return web.json_response(
            {"applied": ack.applied, "want_state": ack.want_state}, headers={"Cache-Control": "no-store"}
        )

    return handler


@_kiosk_message
def post_state(service: KioskService, kiosk_id: str, doc: Any) -> Awaitable[Ack]:
    instance, seq, queue, dropped = parse_envelope(doc)
    snapshot = snapshot_from_json(doc.get("status"))
    return service.report_state(kiosk_id, instance, seq, snapshot, queue, dropped)


@_kiosk_message
def post_heartbeat(service: KioskService, kiosk_id: str, doc: Any) -> Awaitable[Ack]:
    instance, seq, queue, dropped = parse_envelope(doc)
    return service.heartbeat(kiosk_id, instance, seq, queue, dropped)


@_kiosk_message
def post_offline(service: KioskService, kiosk_id: str, doc: Any) -> Awaitable[Ack]:
    """The agent's last word on a clean stop (SIGTERM / SIGINT)."""
    instance, seq, _, _ = parse_envelope(doc)
    return service.offline(kiosk_id, instance, seq)


async def get_openapi(request: web.Request) -> web.Response:
    base = str(request.app.router["kiosk-openapi"].url_for()).removesuffix("/api/v1/openapi.json")
    return web.json_response(openapi_document(base or "/"))


def status_document(rows: list[dict[str, Any]], counts: Mapping[str, int]) -> dict[str, Any]:
    return {"kiosks": rows, "counts": dict(counts)}
