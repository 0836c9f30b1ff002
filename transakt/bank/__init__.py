"""The sandbox bank: its own aiohttp process and schema, and the client the wallet uses."""

from transakt.bank.auth import issue_service_token, verify_service_token
from transakt.bank.client import BankClient
from transakt.bank.errors import BankRequestRejected
from transakt.bank.faults import Faults
from transakt.bank.models import (
    AccountVerification,
    BankAccount,
    BankTransferResult,
    Statement,
    StatementEntry,
    TransferDirection,
    TransferRequest,
    TransferStatus,
    VerificationStatus,
)
from transakt.bank.server import create_app, run

__all__ = [
    "AccountVerification",
    "BankAccount",
    "BankClient",
    "BankRequestRejected",
    "BankTransferResult",
    "Faults",
    "Statement",
    "StatementEntry",
    "TransferDirection",
    "TransferRequest",
    "TransferStatus",
    "VerificationStatus",
    "create_app",
    "issue_service_token",
    "run",
    "verify_service_token",
]
