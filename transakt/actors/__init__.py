"""Domain actors: wallets, ledger writer, bank gateway, live hub, e-mail, and service facades."""

from transakt.actors.bank_buffer import BankBuffer, MemoryBankBuffer, RedisBankBuffer
from transakt.actors.bank_gateway import BankGateway
from transakt.actors.banking import BankingService
from transakt.actors.breaker import BreakerState, CircuitBreaker
from transakt.actors.email import EmailActor
from transakt.actors.ledger_writer import LedgerUnavailable, LedgerWriter
from transakt.actors.live import LiveHub
from transakt.actors.notifications import Notifications, open_notifications
from transakt.actors.outbox_relay import OutboxRelay
from transakt.actors.service import IdempotencyKey, Replay, TransferRequest, WalletService
from transakt.actors.wallet import Debit, WalletActor

__all__ = [
    "BankBuffer",
    "BankGateway",
    "BankingService",
    "BreakerState",
    "CircuitBreaker",
    "Debit",
    "EmailActor",
    "IdempotencyKey",
    "LedgerUnavailable",
    "LedgerWriter",
    "LiveHub",
    "MemoryBankBuffer",
    "Notifications",
    "OutboxRelay",
    "RedisBankBuffer",
    "Replay",
    "TransferRequest",
    "WalletActor",
    "WalletService",
    "open_notifications",
]
