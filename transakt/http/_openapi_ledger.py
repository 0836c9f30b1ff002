"""The OpenAPI parts of the ledger's newer endpoints: batches, refunds and holds."""

from __future__ import annotations

from transakt.http._openapi_components import Json
from transakt.http._openapi_paths import _errors, _ok, _operation, _param
from transakt.http.constants import API_PREFIX

__all__ = ["ledger_paths"]


def ledger_paths() -> Json:
    """Batches, refunds and holds."""
    api = API_PREFIX
    return {
        f"{api}/transfers/batch": {
            "post": _operation(
                "create_batch",
                "Up to 1,000 payments from one wallet. atomic: all are made in one transaction "
                "or none (201, or the refusal naming the payment at fault with index); "
                "independent: each is made or refused on its own (200, a result per payment). "
                "A reference pays once whichever batch carries it; an Idempotency-Key replays "
                "the whole answer. Counts as one payment for the wallet's rate.",
                {
                    **_ok("201", "atomic: every payment made", "BatchResult", replayable=True),
                    **_ok("200", "independent: each payment's outcome", "BatchResult"),
                    **_errors("ValidationError", "Forbidden", "NotFound", "Conflict"),
                    **_errors("TooLarge", "TooMany", "Unavailable"),
                },
                body="BatchTransferRequest",
                parameters=[_param("IdempotencyKey")],
            )
        },
        f"{api}/transfers/{{id}}/refund": {
            "post": _operation(
                "create_refund",
                "The payee pays a posted payment back, in full (no amount: all that is left) or "
                "in part; refunds never add up to more than the payment (refund_refused). The "
                "answer is the refund, a transfer with refund_of naming the payment.",
                {
                    **_ok("201", "the refund, posted", "Refund", replayable=True),
                    **_errors("ValidationError", "Forbidden", "NotFound", "Conflict"),
                    **_errors("TooMany", "Unavailable"),
                },
                body="RefundRequest",
                parameters=[_param("TransferId"), _param("IdempotencyKey")],
            )
        },
        f"{api}/transfers/{{id}}/refunds": {
            "get": _operation(
                "list_refunds",
                "The refunds of a payment, oldest first (both parties)",
                {**_ok("200", "", "TransferList"), **_errors("NotFound")},
                parameters=[_param("TransferId")],
            )
        },
        f"{api}/holds": {
            "post": _operation(
                "create_hold",
                "Reserve money for a payee (a pending transfer, id hld_...) until it is posted, "
                "voided, or expires (expires_in seconds, 7 days by default, 30 at most: then "
                "voided with reason expired). Judged like a payment by the payer's wallet.",
                {
                    **_ok("201", "the hold, pending", "Transfer", replayable=True),
                    **_errors("ValidationError", "Forbidden", "NotFound", "Conflict"),
                    **_errors("TooMany", "Unavailable"),
                },
                body="HoldRequest",
                parameters=[_param("IdempotencyKey")],
            )
        },
        f"{api}/holds/{{id}}": {
            "get": _operation(
                "get_hold",
                "One hold (both parties): pending with expires_at, or posted, or voided with a "
                "reason (voided, expired, or posted N of M)",
                {**_ok("200", "", "Transfer"), **_errors("NotFound")},
                parameters=[_param("TransferId")],
            )
        },
        f"{api}/holds/{{id}}/post": {
            "post": _operation(
                "post_hold",
                "Move the held money (either party): all of it, or amount of it, releasing "
                "the rest. Answers the transfer that moved it (the hold itself, or "
                "<hold id>:post); hold_not_pending (409) once it was settled or expired.",
                {
                    **_ok("200", "the posted transfer", "Transfer", replayable=True),
                    **_errors("ValidationError", "NotFound", "Conflict", "Unavailable"),
                },
                body="PostHoldRequest",
                parameters=[_param("TransferId"), _param("IdempotencyKey")],
            )
        },
        f"{api}/holds/{{id}}/void": {
            "post": _operation(
                "void_hold",
                "Release the held money (either party)",
                {
                    **_ok("200", "the hold, voided", "Transfer", replayable=True),
                    **_errors("NotFound", "Conflict", "Unavailable"),
                },
                parameters=[_param("TransferId"), _param("IdempotencyKey")],
            )
        },
    }
