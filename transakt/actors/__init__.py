"""Domain actors: wallet actors, the ledger writer, the bank gateway and the service facades."""

from transakt.actors.bank_buffer import BankBuffer, MemoryBankBuffer, RedisBankBuffer
from transakt.actors.bank_gateway import BankGateway
from transakt.actors.banking import BankingService
from transakt.actors.breaker import BreakerState, CircuitBreaker
from transakt.actors.ledger_writer import LedgerUnavailable, LedgerWriter
from transakt.actors.service import IdempotencyKey, Replay, TransferRequest, WalletService
from transakt.actors.wallet import Debit, WalletActor

__all__ = [
    "BankBuffer",
    "BankGateway",
    "BankingService",
    "BreakerState",
    "CircuitBreaker",
    "Debit",
    "IdempotencyKey",
    "LedgerUnavailable",
    "LedgerWriter",
    "MemoryBankBuffer",
    "RedisBankBuffer",
    "Replay",
    "TransferRequest",
    "WalletActor",
    "WalletService",
]
