"""The wallet side's client of the sandbox bank: typed calls, transient vs permanent errors."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

import aiohttp

from transakt.bankapi.constants import DEFAULT_STATEMENT_SIZE, ONLINE_PREFIX
from transakt.bankapi.errors import BankRequestRejected
from transakt.bankapi.faults import Faults
from transakt.bankapi.models import (
    AccountVerification,
    BankAccount,
    BankTransferResult,
    Statement,
    TransferDirection,
)
from transakt.bankapi.tokens import issue_service_token
from transakt.errors import BankUnavailable

__all__ = ["BankClient"]

Method = Literal["GET", "POST", "PUT"]
R = TypeVar("R")

# A token is renewed this long before it expires, so that one in flight never lapses.
_TOKEN_MARGIN_SECONDS = 30


def _segment(value: str) -> str:
    # Account numbers and transfer ids go into the path; nothing in them may escape it.
    return quote(value, safe="")


class BankClient:
    """Calls the bank; transient trouble raises BankUnavailable, a refusal BankRequestRejected."""

    def __init__(
        self,
        base_url: str,
        secret: str,
        timeout: float = 2.0,
        *,
        token_ttl: int = 300,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token_ttl = token_ttl
        self._token = ""
        self._token_expires = 0.0
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        state = "open" if self._session is not None and not self._session.closed else "closed"
        return f"<BankClient {self._base_url} {state}>"

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> None:
        """Create the HTTP session (``async with`` does this for you)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        """Close the HTTP session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def verify_user(self, account: str, name: str | None = None) -> BankAccount | None:
        """The account's holder and currency (no balance), or None if the bank does not know it."""
        body = {} if name is None else {"name": name}
        answer = await self._call("POST", f"/api/v1/verify-user/{_segment(account)}", body)
        return _read(BankAccount.from_json, answer) if answer is not None else None

    async def get_account(self, account: str) -> BankAccount | None:
        """The account with its balance, or None if unknown."""
        answer = await self._call("GET", f"/api/v1/accounts/{_segment(account)}")
        return _read(BankAccount.from_json, answer) if answer is not None else None

    async def create_account(
        self,
        name: str,
        currency: str,
        balance: int,
        *,
        account: str | None = None,
        passcode: str | None = None,
    ) -> BankAccount:
        """Open a sandbox account (set-up for demos and tests).

        ``account`` chooses its number (BankRequestRejected 409 ``account_exists`` when taken),
        ``passcode`` the holder's online-banking passcode (the bank draws one when absent). The
        answer carries the passcode: the bank shows it this once.
        """
        body: dict[str, Any] = {"name": name, "currency": currency, "balance": balance}
        if account is not None:
            body["account"] = account
        if passcode is not None:
            body["passcode"] = passcode
        return _read(BankAccount.from_json, await self._require("POST", "/api/v1/accounts", body))

    async def start_verification(self, id: str, account: str, name: str) -> AccountVerification:
        """Send two micro-deposits to ``account``, once per id (a replay answers the stored one).

        Raises BankRequestRejected: 404 ``not_found`` for an unknown account, 422
        ``name_mismatch`` when ``name`` is not the holder's, 422 ``idempotency_key_reused`` when
        the id was used for another account or name.
        """
        body = {"id": id, "account": account, "name": name}
        answer = await self._require("POST", "/api/v1/account-verifications", body)
        return _read(AccountVerification.from_json, answer)

    async def confirm_verification(self, id: str, amounts: Sequence[int]) -> AccountVerification:
        """The holder's two amounts, in any order; answers the verification's state after.

        A wrong answer costs an attempt, so this call is not idempotent while the verification
        is pending. Raises BankRequestRejected 404 ``not_found`` for an unknown id.
        """
        body = {"amounts": list(amounts)}
        path = f"/api/v1/account-verifications/{_segment(id)}/confirm"
        return _read(AccountVerification.from_json, await self._require("POST", path, body))

    async def get_verification(self, id: str) -> AccountVerification | None:
        """A verification as it stands now, or None if the bank never started it."""
        answer = await self._call("GET", f"/api/v1/account-verifications/{_segment(id)}")
        return _read(AccountVerification.from_json, answer) if answer is not None else None

    async def statement(
        self, account: str, passcode: str, limit: int = DEFAULT_STATEMENT_SIZE
    ) -> Statement:
        """What the holder sees in online banking, logged in with account number and passcode.

        Raises BankRequestRejected 401 ``unauthorized`` for a wrong passcode and 429
        ``rate_limited`` (``details["retry_after"]`` seconds) after too many.
        """
        credentials = base64.b64encode(f"{account}:{passcode}".encode()).decode("ascii")
        path = f"{ONLINE_PREFIX}/statement?limit={int(limit)}"
        answer = await self._require("GET", path, authorization=f"Basic {credentials}")
        return _read(Statement.from_json, answer)

    async def transfer(
        self,
        id: str,
        account: str,
        direction: TransferDirection,
        amount: int,
        currency: str,
    ) -> BankTransferResult:
        """Debit or credit the account once per id; a replay answers the stored outcome."""
        body = {
            "id": id,
            "account": account,
            "direction": direction,
            "amount": amount,
            "currency": currency,
        }
        answer = await self._require("POST", "/api/v1/transfers", body)
        return _read(BankTransferResult.from_json, answer)

    async def get_transfer(self, id: str) -> BankTransferResult | None:
        """The stored outcome of a transfer id, or None if the bank never saw it."""
        answer = await self._call("GET", f"/api/v1/transfers/{_segment(id)}")
        return _read(BankTransferResult.from_json, answer) if answer is not None else None

    async def list_transfers(self, account: str) -> list[BankTransferResult]:
        """Every transfer of an account in applied order, following the pages."""
        results: list[BankTransferResult] = []
        cursor: str | None = ""
        while cursor is not None:
            path = f"/api/v1/accounts/{_segment(account)}/transfers?cursor={quote(cursor)}"
            page, cursor = _read(_page, await self._require("GET", path))
            results.extend(page)
        return results

    async def get_faults(self) -> Faults:
        """The faults in force at the bank."""
        return _read(lambda body: Faults(**body), await self._require("GET", "/admin/faults"))

    async def set_faults(
        self,
        *,
        latency_ms: int | None = None,
        failure_rate: float | None = None,
        refuse_all: bool | None = None,
        seed: int | None = None,
        decline_all: bool | None = None,
    ) -> Faults:
        """Change the knobs given (others keep their value); returns the faults now in force."""
        knobs = {
            "latency_ms": latency_ms,
            "failure_rate": failure_rate,
            "refuse_all": refuse_all,
            "seed": seed,
            "decline_all": decline_all,
        }
        body = {key: value for key, value in knobs.items() if value is not None}
        answer = await self._require("PUT", "/admin/faults", body)
        return _read(lambda shown: Faults(**shown), answer)

    async def _require(
        self, method: Method, path: str, body: Any = None, *, authorization: str | None = None
    ) -> dict[str, Any]:
        """Like _call, but the bank's 404 is a BankRequestRejected too (with its details)."""
        answer = await self._call(method, path, body, authorization=authorization, missing=False)
        if answer is None:  # cannot happen with missing=False; keeps the type honest
            raise BankRequestRejected(404, "not_found", f"{method} {path}: not found")
        return answer

    def _bearer(self) -> str:
        now = time.time()
        if now >= self._token_expires - _TOKEN_MARGIN_SECONDS:
            self._token = issue_service_token(self._secret, ttl=self._token_ttl)
            self._token_expires = now + self._token_ttl
        return f"Bearer {self._token}"

    async def _call(
        self,
        method: Method,
        path: str,
        body: Any = None,
        *,
        authorization: str | None = None,
        missing: bool = True,
    ) -> dict[str, Any] | None:
        """One request (with the service token unless ``authorization`` is given): the JSON
        answer, None on the bank's own 404 when ``missing`` allows it, or the right error."""
        if self._session is None or self._session.closed:
            raise RuntimeError("BankClient is not open: use `async with BankClient(...)`")
        headers = {"Authorization": authorization or self._bearer()}
        try:
            async with self._session.request(
                method, self._base_url + path, json=body, headers=headers
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After", "")
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            # Connection refused, reset, or too slow: the bank may be fine a moment later.
            raise BankUnavailable(
                f"bank unreachable: {type(error).__name__}: {error}".rstrip(": ")
            ) from error
        answer = _decode(raw)
        if status >= 500:
            raise BankUnavailable(
                f"bank answered {status}: {_message(answer)}",
                retry_after=float(retry_after) if retry_after.isdigit() else 5.0,
                status=status,
            )
        shape = answer.get("error") if isinstance(answer, dict) else None
        shape = shape if isinstance(shape, dict) else {}
        # Only the bank's own "not_found" means "no such thing"; a 404 page from a proxy or a
        # wrong base URL must not pass for an unknown account.
        if status == 404 and shape.get("code") == "not_found" and missing:
            return None
        if status >= 400:
            details = {k: v for k, v in shape.items() if k not in ("code", "message")}
            raise BankRequestRejected(
                status,
                str(shape.get("code", "http_error")),
                str(shape.get("message", _message(answer))),
                details,
            )
        if not isinstance(answer, dict):
            raise BankUnavailable(f"bank answered {status} without a JSON object", status=status)
        return answer


def _read(build: Callable[[dict[str, Any]], R], answer: dict[str, Any]) -> R:
    """Build a result from an answer; an answer of the wrong shape is the bank's fault."""
    try:
        return build(answer)
    except (KeyError, TypeError, ValueError) as error:
        raise BankUnavailable(f"bank answered in an unexpected shape: {error!r}") from error


def _page(answer: dict[str, Any]) -> tuple[list[BankTransferResult], str | None]:
    cursor = answer["next_cursor"]
    items = [BankTransferResult.from_json(item) for item in answer["items"]]
    return items, str(cursor) if cursor is not None else None


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _message(answer: Any) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return str(answer["error"].get("message", ""))
    return "no details"
