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

# Transfer ids follow the wallet's Idempotency-Key rule: 1-255 characters.
MAX_TRANSFER_ID_LENGTH: Final = 255
MAX_ACCOUNT_LENGTH: Final = 64
MAX_NAME_LENGTH: Final = 200
# Far below 2**63 so that credits can never overflow the bigint balance column.
MAX_BALANCE: Final = 10**18

ACCOUNT_PREFIX: Final = "DE"
ACCOUNT_DIGITS: Final = 20

# How many transfers one page of GET /api/v1/accounts/{account}/transfers holds at most.
DEFAULT_PAGE_SIZE: Final = 1000
MAX_PAGE_SIZE: Final = 10000
