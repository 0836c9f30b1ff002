"""The wallet's way to the bank: client, circuit breaker, Redis buffer, drain, reconciliation."""

from transakt.gateway.asks import BankAsks
from transakt.gateway.breaker import BreakerState, CircuitBreaker
from transakt.gateway.buffer import BankBuffer, MemoryBankBuffer, RedisBankBuffer
from transakt.gateway.client import BankClient
from transakt.gateway.gateway import BankGateway, is_bank_failure

__all__ = [
    "BankAsks",
    "BankBuffer",
    "BankClient",
    "BankGateway",
    "BreakerState",
    "CircuitBreaker",
    "MemoryBankBuffer",
    "RedisBankBuffer",
    "is_bank_failure",
]
