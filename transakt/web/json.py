"""JSON in and out: one encoder for every response, one strict decoder for every body."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from transakt.errors import ClientDisconnected, ValidationFailed

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_LARGE_BODY_BYTES",
    "canonical_json",
    "dumps",
    "json_response",
    "read_json_object",
]

# Largest request body read: every request of either service fits in a few hundred bytes.
MAX_BODY_BYTES: Final = 64 * 1024
# The few endpoints that take many items at once (a batch of 1,000 transfers) read up to this;
# it is also the application's bound on any body, which each endpoint then narrows.
MAX_LARGE_BODY_BYTES: Final = 1024 * 1024

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

# The value types orjson writes exactly as dumps() does: every character of a string gets the
# same escape (checked for all of Unicode; a lone surrogate makes orjson raise), an int the same
# digits (one beyond 64 bits makes it raise). Floats (1e-07 vs 1e-7), NaN (refused vs null),
# subclasses (enums) and the objects orjson would serialize but json refuses never take it.
_PLAIN_TYPES: Final = frozenset({str, int, bool, type(None)})


def dumps(value: Any) -> str:
    """Compact JSON text; NaN and Infinity are refused (they are not JSON)."""
    return _encoder.encode(value)


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, compact), so equal bodies hash equally."""
    # ASCII escapes keep the text encodable whatever the strings hold (even lone surrogates).
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _encode(data: Any) -> bytes:
    """``dumps(data)`` as UTF-8; a flat object of plain values (a transfer, a wallet) via orjson."""
    if type(data) is dict and all(type(value) in _PLAIN_TYPES for value in data.values()):
        with contextlib.suppress(TypeError):  # a lone surrogate, a huge int, a non-string key
            return orjson.dumps(data)
    return dumps(data).encode()


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response: the body is what :func:`dumps` writes, in UTF-8."""
    # Content-Type as aiohttp's json_response writes it, after the caller's headers.
    return web.Response(
        body=_encode(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# json.loads(raw, parse_constant=...) builds a new JSONDecoder on every call; this is that
# decoder, built once. _json_loads is json.loads' own path for bytes (encoding sniffed, UTF-8
# BOM allowed, lone surrogates kept), minus the per-call construction.
_decoder = json.JSONDecoder(parse_constant=_refuse_constant)


def _json_loads(raw: bytes) -> Any:
    return _decoder.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


def _loads(raw: bytes) -> Any:
    """What ``json.loads(raw, parse_constant=_refuse_constant)`` gives, faster for plain bodies.

    orjson reads a flat object of strings, ints, booleans and nulls (every request body of
    the contract) to the same dict, in the same key order. Where the two could part, it either
    raises (bytes that are not UTF-8, a BOM, a lone surrogate escape, NaN) or yields what the
    check below sends back to json (a float: orjson turns ints beyond 64 bits into floats;
    anything nested), so those bodies decode, or fail, exactly as json decides.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _json_loads(raw)
    if type(value) is dict and all(type(item) in _PLAIN_TYPES for item in value.values()):
        return value
    return _json_loads(raw)


def _invalid_body(message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={"body": message})


async def read_json_object(
    request: web.Request, *, optional: bool = False, max_bytes: int = MAX_BODY_BYTES
) -> dict[str, Any]:
    """The request body parsed as a JSON object, else ValidationFailed (HTTP 422); a body over
    ``max_bytes`` is a 413.

    With ``optional``, no body at all (an action without fields) reads as ``{}``.
    """
    if optional and not request.body_exists:
        return {}
    if request.content_length is not None and request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=request.content_length)
    content = request.content
    if request.content_length is not None and content.is_eof() and not content.at_eof():
        # The whole body is buffered already (the usual case for a few hundred bytes): take it
        # in one call instead of read()'s chunk loop. Nothing read it before (the buffer still
        # holds it) and nothing reads it after. Inflated bodies can outgrow their length.
        raw = content.read_nowait()
        if len(raw) > max_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=len(raw))
    else:
        try:
            raw = await request.read()  # bounded by the application's client_max_size
        except ConnectionResetError as error:
            # The client closed (or reset) the connection before the whole body arrived:
            # aiohttp fails the read with ConnectionResetError, "Connection lost" on a close,
            # errno 104 on a reset. Left alone it is a ConnectionError, which reads as a lost
            # database (503); it is the client's doing, and nobody is left to answer (499).
            raise ClientDisconnected(
                "the client closed the connection before sending the whole request body"
            ) from error
        if len(raw) > max_bytes:  # sent without a length, within the application's bound
            raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=len(raw))
    if not raw.strip():
        if optional:
            return {}
        raise _invalid_body("the request body must be a JSON object")
    try:
        body = _loads(raw)
    except (ValueError, RecursionError):
        # ValueError covers malformed JSON, bad UTF-8 and integers too long to convert;
        # RecursionError covers absurdly deep nesting.
        raise _invalid_body("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid_body("the request body must be a JSON object")
    return body
