"""Names shared by the sandbox bank and its client: token claims, paths, limits."""

from __future__ import annotations

from typing import Final

# The service token's audience and issuer: a token minted for another service is refused here.
SERVICE_TOKEN_AUDIENCE: Final = "transakt-bank"
SERVICE_TOKEN_ISSUER: Final = "transakt-wallet"
# Pinned: the algorithm is never taken from the token header ("alg": "none" and key confusion).
SERVICE_TOKEN_ALGORITHM: Final = "HS256"

API_PREFIX: Final = "/api/v1"
ADMIN_PREFIX: Final = "/admin"
# The holder's own side ("online banking"): HTTP Basic with account number and passcode, never
# the service token, and never touched by the fault injector.
ONLINE_PREFIX: Final = "/online/v1"

# Transfer ids follow the wallet's Idempotency-Key rule: 1-255 characters.
MAX_TRANSFER_ID_LENGTH: Final = 255
MAX_ACCOUNT_LENGTH: Final = 64
MAX_NAME_LENGTH: Final = 200
# Far below 2**63 so that credits can never overflow the bigint balance column.
MAX_BALANCE: Final = 10**18

ACCOUNT_PREFIX: Final = "DE"
ACCOUNT_DIGITS: Final = 20
# A number chosen by the caller (stable demo accounts): capital letters and digits.
CHOSEN_ACCOUNT_PATTERN: Final = r"[A-Z0-9]{1,64}"

# Holder passcodes: printable ASCII, long enough to be worth guessing at only slowly.
MIN_PASSCODE_LENGTH: Final = 8
MAX_PASSCODE_LENGTH: Final = 128
# Online banking refuses an account after this many wrong passcodes within the window.
PASSCODE_FAILURE_LIMIT: Final = 5
PASSCODE_FAILURE_WINDOW_SECONDS: Final = 60

# Account verification by micro-deposits: ids follow the transfer id rule (printable ASCII).
MAX_VERIFICATION_ID_LENGTH: Final = 255
VERIFICATION_ATTEMPTS: Final = 3
VERIFICATION_TTL_SECONDS: Final = 7 * 24 * 3600
# Each micro-deposit is drawn from this range of minor units (inclusive), the two distinct.
MICRO_DEPOSIT_MIN: Final = 1
MICRO_DEPOSIT_MAX: Final = 99

# What the holder's statement calls each kind of entry.
MICRO_DEPOSIT_DESCRIPTION: Final = "TRANSAKT ACCTVERIFY"
DEBIT_DESCRIPTION: Final = "TRANSAKT WALLET TOP-UP"
CREDIT_DESCRIPTION: Final = "TRANSAKT WALLET PAYOUT"
DEFAULT_STATEMENT_SIZE: Final = 100
MAX_STATEMENT_SIZE: Final = 1000

# How many transfers one page of GET /api/v1/accounts/{account}/transfers holds at most.
DEFAULT_PAGE_SIZE: Final = 1000
MAX_PAGE_SIZE: Final = 10000
