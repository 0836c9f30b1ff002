"""Reconciliation: the wallet ledger's deposits and withdrawals against the bank's own records.

For every deposit or withdrawal a user asked for: posted in the wallet if and only if the bank
completed it; voided if and only if the bank refused it or never applied it; the same account,
direction, amount and currency on both sides. And no transfer on a user's bank account that the
wallet does not know. Pending transfers younger than a grace period are in flight, not wrong.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from transakt.bankapi.errors import BankRequestRejected
from transakt.bankapi.models import BankTransferResult
from transakt.config import Settings
from transakt.gateway.client import BankClient
from transakt.storage.bank_requests import RecordedBankTransfer, recorded_bank_transfers

__all__ = ["Difference", "ReconcileReport", "reconcile"]

# Accounts listed at the bank at once: enough to be quick, few enough not to flood it.
_CONCURRENT_LISTINGS = 8


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the two ledgers disagree about one transfer id."""

    transfer_id: str
    problem: str
    wallet: str
    bank: str

    def __str__(self) -> str:
        return f"{self.transfer_id}: {self.problem} (wallet: {self.wallet}; bank: {self.bank})"


@dataclass(slots=True)
class ReconcileReport:
    """What was compared, and every difference found."""

    checked: int = 0
    bank_transfers: int = 0
    in_flight: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the wallet ledger and the bank agree."""
        return not self.differences

    def lines(self) -> list[str]:
        """The report as printable lines, differences first."""
        lines = [f"difference: {difference}" for difference in self.differences]
        lines += [f"in flight: {transfer_id}" for transfer_id in self.in_flight]
        verdict = "no differences" if self.ok else f"{len(self.differences)} difference(s)"
        lines.append(
            f"checked {self.checked} wallet transfers against {self.bank_transfers} bank "
            f"transfers: {verdict}"
        )
        return lines


def _wallet_side(recorded: RecordedBankTransfer) -> str:
    request = recorded.request
    reason = f" ({recorded.reason})" if recorded.reason else ""
    return (
        f"{request.kind} {recorded.status}{reason}, {request.direction} {request.account} "
        f"{request.amount} {request.currency}"
    )


def _bank_side(found: BankTransferResult | None) -> str:
    if found is None:
        return "no such transfer"
    reason = f" ({found.reason})" if found.reason else ""
    return (
        f"{found.status}{reason}, {found.direction} {found.account} {found.amount} {found.currency}"
    )


def compare(
    recorded: RecordedBankTransfer, found: BankTransferResult | None, grace: float
) -> tuple[str | None, bool]:
    """The problem with one transfer (None if it agrees), and whether it is still in flight."""
    request = recorded.request
    if found is not None and (
        found.account,
        found.direction,
        found.amount,
        found.currency,
    ) != (request.account, request.direction, request.amount, request.currency):
        return "account, direction, amount or currency differ", False
    if recorded.status == "pending":
        if recorded.age_seconds < grace:
            return None, True
        if found is None:
            return f"pending for {recorded.age_seconds:.0f}s and unknown to the bank", False
        return "the bank answered but the wallet is still pending", False
    if recorded.status == "posted" and (found is None or not found.completed):
        return "posted in the wallet but not completed by the bank", False
    if recorded.status == "voided" and found is not None and found.completed:
        return "voided in the wallet but completed by the bank", False
    return None, False


async def reconcile(
    settings: Settings, database_url: str, *, grace_seconds: float = 60.0
) -> ReconcileReport:
    """Compare every deposit and withdrawal in the wallet ledger with the bank's records."""
    report = ReconcileReport()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        recorded: list[RecordedBankTransfer] = []
        async for page in recorded_bank_transfers(pool):
            recorded.extend(page)
        accounts = {
            row["bank_account"] for row in await pool.fetch("SELECT bank_account FROM users")
        }
    finally:
        await pool.close()

    secret = settings.bank.service_secret.get_secret_value()
    async with BankClient(settings.bank.url, secret, timeout=30.0) as bank:
        at_bank = await _bank_transfers(bank, sorted(accounts))
        report.bank_transfers = len(at_bank)
        known: set[str] = set()
        for item in recorded:
            transfer_id = item.request.transfer_id
            known.add(transfer_id)
            found = at_bank.get(transfer_id)
            if found is None:
                # Not on the user's account: ask for the id, in case it sits on another one.
                found = await bank.get_transfer(transfer_id)
            problem, in_flight = compare(item, found, grace_seconds)
            report.checked += 1
            if in_flight:
                report.in_flight.append(transfer_id)
            elif problem is not None:
                report.differences.append(
                    Difference(transfer_id, problem, _wallet_side(item), _bank_side(found))
                )
        for transfer_id, found in at_bank.items():
            if transfer_id not in known:
                report.differences.append(
                    Difference(
                        transfer_id,
                        "the bank has a transfer the wallet does not know",
                        "no such transfer",
                        _bank_side(found),
                    )
                )
    return report


async def _bank_transfers(bank: BankClient, accounts: list[str]) -> dict[str, BankTransferResult]:
    """Every transfer the bank holds on these accounts, by id."""
    slots = asyncio.Semaphore(_CONCURRENT_LISTINGS)

    async def listing(account: str) -> list[BankTransferResult]:
        async with slots:
            try:
                return await bank.list_transfers(account)
            except BankRequestRejected as error:
                # An account the bank does not know holds no transfers to compare.
                if error.status == 404:
                    return []
                raise

    pages = await asyncio.gather(*(listing(account) for account in accounts))
    return {found.id: found for page in pages for found in page}
