"""The OpenAPI part of the sandbox bank's outage mode (dev mode only; self-contained: its
schema inline, errors by reference)."""

from __future__ import annotations

from typing import Final

from transakt.bankapi.modes import MODES, SLOW_LATENCY_MS
from transakt.http._openapi_components import ERRORS, Json
from transakt.http.constants import API_PREFIX

__all__ = ["sandbox_paths"]

_STATE: Final[Json] = {
    "type": "object",
    "required": ["mode", "latency_ms"],
    "additionalProperties": False,
    "properties": {
        "mode": {
            "type": "string",
            "enum": list(MODES),
            "description": (
                "normal: no faults. slow: every bank call waits latency_ms first "
                f"({SLOW_LATENCY_MS} by default, under the gateway's call timeout), so "
                "deposits stay pending a moment, then post. down: the bank answers every call "
                "503; the gateway's breaker opens and deposits and withdrawals wait, pending, "
                "in its buffer, and post once the mode is normal again. refusing: the bank "
                "declines every new deposit and withdrawal; the wallet voids them with reason "
                "declined."
            ),
        },
        "latency_ms": {
            "type": "integer",
            "minimum": 0,
            "maximum": 60_000,
            "description": (
                "the bank's delay per call; in a PUT, the slow mode's delay (0 or absent: "
                f"{SLOW_LATENCY_MS}), ignored by the other modes"
            ),
        },
    },
}


def _errors(*names: str) -> Json:
    return {ERRORS[name][0]: {"$ref": f"#/components/responses/{name}"} for name in names}


def _operation(operation_id: str, summary: str, responses: Json) -> Json:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["sandbox"],
        "responses": {
            "200": {
                "description": "the sandbox bank's mode now",
                "content": {"application/json": {"schema": _STATE}},
            },
            **responses,
            **_errors("Unauthorized", "NotFound", "Unavailable"),
        },
    }


def sandbox_paths() -> Json:
    """The sandbox path: only on a node in TRANSAKT_MODE=dev (elsewhere it is 404 not_found)."""
    dev_only = " Dev mode only (TRANSAKT_MODE=dev): elsewhere the path is 404 not_found."
    put = _operation(
        "set_sandbox_bank",
        "Switch the sandbox bank's outage mode, through its admin API: watch a deposit stay "
        "pending while the bank is down, and post once it is back. Throttled per user." + dev_only,
        _errors("ValidationError", "TooMany"),
    )
    put["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {**_STATE, "required": ["mode"]},
                "example": {"mode": "down"},
            }
        },
    }
    return {
        f"{API_PREFIX}/sandbox/bank": {
            "get": _operation(
                "get_sandbox_bank",
                "The sandbox bank's outage mode and its delay per call." + dev_only,
                {},
            ),
            "put": put,
        }
    }
