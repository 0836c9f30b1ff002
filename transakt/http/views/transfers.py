"""Payments between wallets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from transakt.errors import ValidationFailed
from transakt.http.auth import current_user_id
from transakt.http.errors import domain_error_parts
from transakt.http.idempotency import answer_once
from transakt.http.ledger_schemas import BatchBody
from transakt.http.schemas import TransferBody, parse_email_query, parse_path_id, validate_body
from transakt.http.views._shared import node_of, service_of
from transakt.models import Transfer
from transakt.services.batches import BatchItem, BatchRequest, BatchResult
from transakt.services.idempotency import IdempotencyKey, Replay
from transakt.services.reviews import ReviewedTransfer
from transakt.services.wallets import TransferRequest
from transakt.web.json import MAX_LARGE_BODY_BYTES, json_response, read_json_object

__all__ = ["create_batch", "create_transfer", "get_transfer", "payment_of", "recipient"]


def payment_of(body: TransferBody) -> TransferRequest:
    """The payment a transfer (or hold) body asks for."""
    return TransferRequest(
        from_wallet=body.from_wallet,
        to_wallet=body.to_wallet,
        to_email=body.to_email,
        amount=body.amount,
        currency=body.currency,
        memo=body.memo,
        metadata=body.metadata,
    )


async def create_transfer(request: web.Request) -> web.Response:
    """POST /api/v1/transfers: 201 once the transfer is posted and durable (202 when a review
    rule held it: pending, with ``review``)."""
    user_id = current_user_id(request)
    raw = await read_json_object(request)
    body = validate_body(TransferBody, raw)
    transfer_request = payment_of(body)
    service = service_of(request)
    reviews = node_of(request).reviews

    async def pay(key: IdempotencyKey | None) -> Transfer | ReviewedTransfer | Replay:
        paid = await service.transfer(user_id, transfer_request, key)
        return paid if isinstance(paid, Replay) else await reviews.held(user_id, paid)

    # The ledger keeps the success with the transfer, and finds a replay by itself.
    return await answer_once(request, raw, pay, status=201, stores_success=True)


async def get_transfer(request: web.Request) -> web.Response:
    """GET /api/v1/transfers/{id}: visible to both parties."""
    transfer_id = parse_path_id(request.match_info["id"], "transfer")
    user_id = current_user_id(request)
    transfer = await service_of(request).get_transfer(user_id, transfer_id)
    [shown] = await node_of(request).reviews.shown(user_id, [transfer])
    return json_response(shown.to_json())


async def recipient(request: web.Request) -> web.Response:
    """GET /api/v1/recipients?email=: whom a payment to this address reaches (throttled)."""
    email = parse_email_query(request.query.get("email"))
    found = await service_of(request).recipient(current_user_id(request), email)
    return json_response(found.to_json())


@dataclass(frozen=True, slots=True)
class _BatchAnswer:
    request: web.Request
    result: BatchResult

    def to_json(self) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for item in self.result.items:
            entry: dict[str, Any] = {"index": item.index, "reference": item.reference}
            if item.transfer is not None:
                entry["status"] = "applied"
                entry["transfer"] = item.transfer.to_json()
            else:
                assert item.error is not None
                _status, body, _headers = domain_error_parts(self.request, item.error)
                entry["status"] = "refused"
                entry["error"] = body["error"]
            results.append(entry)
        applied = self.result.applied
        return {
            "mode": "atomic" if self.result.atomic else "independent",
            "applied": applied,
            "refused": len(results) - applied,
            "results": results,
        }


async def create_batch(request: web.Request) -> web.Response:
    """POST /api/v1/transfers/batch: up to 1,000 payments from one wallet; atomic batches
    answer 201 (all made) or the refusal, independent ones 200 with each payment's outcome."""
    user_id = current_user_id(request)
    raw = await read_json_object(request, max_bytes=MAX_LARGE_BODY_BYTES)
    body = validate_body(BatchBody, raw)
    references = [item.reference for item in body.transfers if item.reference is not None]
    if len(set(references)) != len(references):
        raise ValidationFailed("each reference may appear once in a batch", field="transfers")
    batch = BatchRequest(
        from_wallet=body.from_wallet,
        currency=body.currency,
        atomic=body.mode == "atomic",
        items=tuple(
            BatchItem(
                item.to_wallet,
                item.to_email,
                item.amount,
                item.memo,
                item.reference,
                item.metadata,
            )
            for item in body.transfers
        ),
        metadata=body.metadata,
    )
    batches = node_of(request).batches

    async def pay(key: IdempotencyKey | None) -> _BatchAnswer:
        return _BatchAnswer(request, await batches.transfer_batch(user_id, batch, key))

    status = 201 if batch.atomic else 200
    return await answer_once(request, raw, pay, status=status, look_up_first=True)
