"""Domain actors: wallet actors, the group-commit ledger writer and the service facade."""

from transakt.actors.ledger_writer import LedgerUnavailable, LedgerWriter
from transakt.actors.service import IdempotencyKey, Replay, TransferRequest, WalletService
from transakt.actors.wallet import Debit, WalletActor

__all__ = [
    "Debit",
    "IdempotencyKey",
    "LedgerUnavailable",
    "LedgerWriter",
    "Replay",
    "TransferRequest",
    "WalletActor",
    "WalletService",
]
