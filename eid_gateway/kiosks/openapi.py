"""The OpenAPI 3.1 description of the kiosk API (served as JSON at api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_NULLSTR = {"type": ["string", "null"]}

_READER = {
    "type": "object",
    "required": ["name", "state"],
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "state": {"enum": ["empty", "id_card", "other_card", "card_unreadable", "card_mute", "in_use", "unavailable"]},
        "detail": _NULLSTR,
        "reader_pace": {"type": ["array", "null"], "items": _STR, "maxItems": 8},
        "card": {
            "type": ["object", "null"],
            "required": ["atr", "atr_known_eid"],
            "properties": {
                "atr": {"type": "string", "pattern": "^([0-9A-F]{2})*$"},
                "atr_known_eid": {"type": "boolean"},
                "pace": {
                    "type": "array",
                    "maxItems": 16,
                    "items": {
                        "type": "object",
                        "required": ["protocol", "name", "version"],
                        "properties": {
                            "protocol": _STR,
                            "name": _STR,
                            "version": {"type": "integer", "minimum": 0},
                            "parameter_id": {"type": ["integer", "null"]},
                            "parameter_name": _NULLSTR,
                        },
                    },
                },
                "chip_authentication": {"type": "array", "items": _STR},
                "terminal_authentication": {"type": "boolean"},
            },
        },
    },
}

_ENVELOPE = {
    "instance": {"type": "string", "minLength": 8, "maxLength": 64, "description": "agent run id"},
    "seq": {"type": "integer", "minimum": 0, "description": "grows with every message of one run"},
    "queue": {"type": "integer", "minimum": 0, "description": "messages waiting in the agent"},
    "dropped": {"type": "integer", "minimum": 0, "description": "old states the agent had to drop"},
}


def openapi_document(base_path: str) -> dict[str, Any]:
    ack = {
        "description": "accepted (or a duplicate of an accepted message)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"applied": {"type": "boolean"}, "want_state": {"type": "boolean"}},
                }
            }
        },
    }
    errors = {
        "400": {"description": "malformed body; the error names the field"},
        "401": {"description": "missing or wrong kiosk credential"},
        "413": {"description": "body too large"},
    }
    kiosk_param = {
        "name": "kiosk_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
    }
    envelope = {"type": "object", "required": ["instance", "seq"], "properties": _ENVELOPE}

    def kiosk_post(summary: str, body: dict[str, Any]) -> dict[str, Any]:
        """One kiosk message's POST: its JSON body's schema, the kiosk path parameter, the Ack or an error."""
        return {
            "post": {
                "summary": summary,
                "parameters": [kiosk_param],
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": {"200": ack, **errors},
            }
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eid-gateway kiosk API",
            "version": "1",
            "description": "Bürgerbüro kiosk agents report card-reader state and heartbeats.",
        },
        "servers": [{"url": base_path}],
        "components": {
            "securitySchemes": {"kioskToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Reader": _READER},
        },
        "security": [{"kioskToken": []}],
        "paths": {
            "/api/v1/kiosks/{kiosk_id}/state": kiosk_post(
                "Report the kiosk's whole reader state (sent on every change)",
                {
                    "type": "object",
                    "required": ["instance", "seq", "status"],
                    "properties": {
                        **_ENVELOPE,
                        "status": {
                            "type": "object",
                            "required": ["service", "readers"],
                            "properties": {
                                "service": {"enum": ["ok", "pcsc_unavailable", "no_readers"]},
                                "detail": _NULLSTR,
                                "readers": {
                                    "type": "array",
                                    "maxItems": 16,
                                    "items": {"$ref": "#/components/schemas/Reader"},
                                },
                            },
                        },
                    },
                },
            ),
            "/api/v1/kiosks/{kiosk_id}/heartbeat": kiosk_post(
                "I am alive; the answer's want_state asks for a full state report", envelope
            ),
            "/api/v1/kiosks/{kiosk_id}/offline": kiosk_post(
                "The agent stops cleanly: show the kiosk offline now, not after missed heartbeats", envelope
            ),
        },
    }
