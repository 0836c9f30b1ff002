"""Helpers that walk the two proofs a new user gives, through the real services.

The bank account: the sandbox bank's statement (read with the holder's passcode, as the holder
would in their online banking) shows the two micro-deposits, which go back to the wallet. The
e-mail: the code is read from the mail the wallet queued for the address (its delivery row),
which is what the user would find in their inbox.
"""

from __future__ import annotations

import asyncpg
from httpkit import Answer, Api

from transakt.gateway import BankClient

VERIFY_DESCRIPTION = "TRANSAKT ACCTVERIFY"


async def micro_deposits(bank: BankClient, account: str, passcode: str) -> list[int]:
    """The amounts of the newest verification's two deposits in the holder's statement."""
    statement = await bank.statement(account, passcode)
    amounts = [
        entry.amount for entry in statement.entries if entry.description == VERIFY_DESCRIPTION
    ]
    assert len(amounts) >= 2, statement
    return amounts[:2]  # newest first


async def link_bank_account(
    api: Api, bank: BankClient, token: str, account: str, passcode: str
) -> Answer:
    """Confirm the micro-deposits the bank sent to ``account``; the wallet's answer."""
    amounts = await micro_deposits(bank, account, passcode)
    return await api.post("/api/v1/bank-account/confirm", token=token, json={"amounts": amounts})


async def mailed_code(pool: asyncpg.Pool, user_id: str) -> str:
    """The newest e-mail verification code queued for the user."""
    code = await pool.fetchval(
        "SELECT transfer ->> 'code' FROM mail_deliveries "
        "WHERE recipient = $1 AND template = 'verify_email' ORDER BY created_at DESC LIMIT 1",
        user_id,
    )
    assert isinstance(code, str), f"no verification mail for {user_id}"
    return code


async def verify_email(api: Api, pool: asyncpg.Pool, token: str, user_id: str) -> Answer:
    """Type in the code mailed to the user."""
    code = await mailed_code(pool, user_id)
    return await api.post("/api/v1/auth/verify-email", token=token, json={"code": code})
