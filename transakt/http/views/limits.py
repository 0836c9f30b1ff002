"""A wallet's spend limits: its owner reads and sets them."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from transakt.http.auth import current_user_id
from transakt.http.schemas import _Body, parse_path_id, validate_body
from transakt.http.views._shared import node_of
from transakt.web.json import json_response, read_json_object

__all__ = ["LimitsBody", "get_limits", "set_limits"]

#: The largest limit (the ledger's largest amount).
MAX_LIMIT = 10**15


def _limit(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_LIMIT:
        raise PydanticCustomError(
            "invalid", f"must be null (no limit) or an integer of minor units from 0 to {MAX_LIMIT}"
        )
    return value


Limit = Annotated[
    int | None,
    BeforeValidator(_limit),
    WithJsonSchema(
        {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": MAX_LIMIT,
            "description": "minor units; null: no limit",
        }
    ),
]


class LimitsBody(_Body):
    """PUT /api/v1/wallets/{id}/limits: both windows, each a cap or null."""

    daily: Limit
    monthly: Limit


async def get_limits(request: web.Request) -> web.Response:
    """GET /api/v1/wallets/{id}/limits: the limits and what the wallet spent (UTC windows)."""
    wallet_id = parse_path_id(request.match_info["id"], "wallet")
    found = await node_of(request).limits.get(current_user_id(request), wallet_id)
    return json_response(found.to_json())


async def set_limits(request: web.Request) -> web.Response:
    """PUT /api/v1/wallets/{id}/limits: replace them; the next payment obeys them."""
    user_id = current_user_id(request)
    wallet_id = parse_path_id(request.match_info["id"], "wallet")
    body = validate_body(LimitsBody, await read_json_object(request))
    found = await node_of(request).limits.set(user_id, wallet_id, body.daily, body.monthly)
    return json_response(found.to_json())
