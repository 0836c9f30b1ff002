"""The bank's API as both sides see it: wire models, paths, service tokens, refusals.

The wallet (its gateway and client) and the sandbox bank share this and nothing else.
"""

from transakt.bankapi.errors import BankRequestRejected
from transakt.bankapi.faults import Faults
from transakt.bankapi.models import (
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
from transakt.bankapi.tokens import issue_service_token, verify_service_token

__all__ = [
    "AccountVerification",
    "BankAccount",
    "BankRequestRejected",
    "BankTransferResult",
    "Faults",
    "Statement",
    "StatementEntry",
    "TransferDirection",
    "TransferRequest",
    "TransferStatus",
    "VerificationStatus",
    "issue_service_token",
    "verify_service_token",
]
