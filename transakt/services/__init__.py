"""Application services the HTTP views call: wallets and transfers, banking, people and trust."""

from transakt.services.accounts import Accounts, SignedUp
from transakt.services.bank_links import BankLinks
from transakt.services.banking import BankingService
from transakt.services.email_verification import EmailVerification
from transakt.services.housekeeping import Housekeeping
from transakt.services.idempotency import Idempotency, IdempotencyKey, Replay
from transakt.services.sessions import Sessions
from transakt.services.throttle import Throttle
from transakt.services.wallets import TransferRequest, WalletService

__all__ = [
    "Accounts",
    "BankLinks",
    "BankingService",
    "EmailVerification",
    "Housekeeping",
    "Idempotency",
    "IdempotencyKey",
    "Replay",
    "Sessions",
    "SignedUp",
    "Throttle",
    "TransferRequest",
    "WalletService",
]
