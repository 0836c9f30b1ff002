"""The bank's HTTP handlers: parse, call the store or the cache, answer JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from aiohttp import web
from prometheus_client import generate_latest

from transakt.bankapi.constants import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_STATEMENT_SIZE,
    MAX_ACCOUNT_LENGTH,
    MAX_PAGE_SIZE,
    MAX_STATEMENT_SIZE,
    MAX_TRANSFER_ID_LENGTH,
    MAX_VERIFICATION_ID_LENGTH,
    ONLINE_PREFIX,
)
from transakt.errors import NotFound, ValidationFailed
from transakt.observability import CONTENT_TYPE
from transakt.sandbox.cache import AccountDirectory
from transakt.sandbox.errors import HolderUnauthorized
from transakt.sandbox.faults import FaultInjector
from transakt.sandbox.metrics import BankMetrics
from transakt.sandbox.online import (
    PasscodeThrottle,
    basic_credentials,
    hash_passcode,
    new_passcode,
    passcode_matches,
)
from transakt.sandbox.store import BankStore
from transakt.sandbox.validation import (
    parse_confirmation,
    parse_new_account,
    parse_new_verification,
    parse_transfer,
    parse_verify,
)
from transakt.text import names_match
from transakt.web.json import read_json_object

__all__ = [
    "DIRECTORY_KEY",
    "FAULTS_KEY",
    "METRICS_KEY",
    "STORE_KEY",
    "THROTTLE_KEY",
    "VERIFICATION_TTL_KEY",
    "routes",
]

STORE_KEY: Final = web.AppKey("bank_store", BankStore)
DIRECTORY_KEY: Final = web.AppKey("bank_directory", AccountDirectory)
FAULTS_KEY: Final = web.AppKey("bank_faults", FaultInjector)
METRICS_KEY: Final = web.AppKey("bank_metrics", BankMetrics)
THROTTLE_KEY: Final = web.AppKey("bank_passcode_throttle", PasscodeThrottle)
VERIFICATION_TTL_KEY: Final = web.AppKey("bank_verification_ttl", float)

routes = web.RouteTableDef()


def _path_value(request: web.Request, name: str, max_length: int) -> str:
    # A path value no account or transfer could have is simply unknown: 404, no database trip.
    value = request.match_info[name]
    if not value or len(value) > max_length or not value.isprintable():
        raise NotFound(f"no such {name}", **{name: value[:max_length]})
    return value


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise ValidationFailed(f"{name} must be an integer from {low} to {high}", field=name)
    return int(raw)


@routes.post("/api/v1/accounts")
async def create_account(request: web.Request) -> web.Response:
    """Open a sandbox account: 201 with its number and, this once, the holder's passcode."""
    new = parse_new_account(await read_json_object(request))
    passcode = new.passcode if new.passcode is not None else new_passcode()
    account = await request.app[STORE_KEY].create_account(
        new.name,
        new.currency,
        new.balance,
        account=new.account,
        passcode_hash=hash_passcode(passcode),
    )
    return web.json_response(replace(account, passcode=passcode).to_json(), status=201)


@routes.get("/api/v1/accounts/{account}")
async def get_account(request: web.Request) -> web.Response:
    """One account with its current balance."""
    number = _path_value(request, "account", MAX_ACCOUNT_LENGTH)
    account = await request.app[DIRECTORY_KEY].account(number)
    if account is None:
        raise NotFound("no such account", account=number)
    return web.json_response(account.to_json())


@routes.post("/api/v1/verify-user/{account}")
async def verify_user(request: web.Request) -> web.Response:
    """Confirm an account exists; with a name, also say whether it matches the holder."""
    number = _path_value(request, "account", MAX_ACCOUNT_LENGTH)
    name = parse_verify(await read_json_object(request, optional=True))
    identity = await request.app[DIRECTORY_KEY].identity(number)
    if identity is None:
        raise NotFound("no such account", account=number)
    matches = names_match(name, identity.name) if name is not None else None
    return web.json_response(replace(identity, name_matches=matches).to_json())


@routes.post("/api/v1/transfers")
async def create_transfer(request: web.Request) -> web.Response:
    """Apply a debit or credit once per id; a replay answers the stored outcome."""
    transfer = parse_transfer(await read_json_object(request))
    decline = request.app[FAULTS_KEY].faults.decline_all
    outcome, fresh = await request.app[STORE_KEY].apply_transfer(transfer, decline=decline)
    if fresh:
        request.app[METRICS_KEY].count_transfer(outcome.status, outcome.reason)
    headers = {} if fresh else {"Idempotent-Replayed": "true"}
    return web.json_response(outcome.to_json(), headers=headers)


@routes.get("/api/v1/transfers/{id}")
async def get_transfer(request: web.Request) -> web.Response:
    """The stored outcome of a transfer id (404: the bank never saw it)."""
    transfer_id = _path_value(request, "id", MAX_TRANSFER_ID_LENGTH)
    outcome = await request.app[STORE_KEY].get_transfer(transfer_id)
    if outcome is None:
        raise NotFound("no such transfer", id=transfer_id)
    return web.json_response(outcome.to_json())


@routes.get("/api/v1/accounts/{account}/transfers")
async def list_transfers(request: web.Request) -> web.Response:
    """An account's transfers in applied order, paged by ``?limit=&cursor=``."""
    number = _path_value(request, "account", MAX_ACCOUNT_LENGTH)
    limit = _query_int(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    cursor = _query_int(request, "cursor", 0, 0, 2**62)
    if await request.app[DIRECTORY_KEY].identity(number) is None:
        raise NotFound("no such account", account=number)
    items, next_cursor = await request.app[STORE_KEY].list_transfers(
        number, after=cursor, limit=limit
    )
    return web.json_response(
        {
            "items": [item.to_json() for item in items],
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
        }
    )


@routes.post("/api/v1/account-verifications")
async def start_verification(request: web.Request) -> web.Response:
    """Send two micro-deposits to an account, once per id: 201, or 200 for a replay."""
    new = parse_new_verification(await read_json_object(request))
    verification, fresh = await request.app[STORE_KEY].start_verification(
        new.id, new.account, new.name, request.app[VERIFICATION_TTL_KEY]
    )
    if fresh:
        request.app[METRICS_KEY].count_verification("started")
        return web.json_response(verification.to_json(), status=201)
    return web.json_response(verification.to_json(), headers={"Idempotent-Replayed": "true"})


@routes.get("/api/v1/account-verifications/{id}")
async def get_verification(request: web.Request) -> web.Response:
    """A verification as it stands now."""
    verification_id = _path_value(request, "id", MAX_VERIFICATION_ID_LENGTH)
    verification = await request.app[STORE_KEY].get_verification(verification_id)
    if verification is None:
        raise NotFound("no such verification", id=verification_id)
    return web.json_response(verification.to_json())


@routes.post("/api/v1/account-verifications/{id}/confirm")
async def confirm_verification(request: web.Request) -> web.Response:
    """The holder's two amounts: always 200 with the verification's state after the attempt."""
    verification_id = _path_value(request, "id", MAX_VERIFICATION_ID_LENGTH)
    amounts = parse_confirmation(await read_json_object(request))
    store = request.app[STORE_KEY]
    verification = await store.confirm_verification(verification_id, amounts)
    if verification is None:
        raise NotFound("no such verification", id=verification_id)
    request.app[METRICS_KEY].count_verification(f"confirm_{verification.status}")
    return web.json_response(verification.to_json())


@routes.get(ONLINE_PREFIX + "/statement")
async def statement(request: web.Request) -> web.Response:
    """The holder's statement, behind HTTP Basic (account number and passcode)."""
    account, passcode = basic_credentials(request)
    throttle = request.app[THROTTLE_KEY]
    stamp = throttle.reserve(account)  # counted as wrong until proved right
    try:
        right = passcode_matches(passcode, await request.app[STORE_KEY].get_passcode_hash(account))
    except BaseException:
        throttle.release(account, stamp)  # undecided (database away): not a wrong passcode
        raise
    if not right:
        raise HolderUnauthorized("wrong account number or passcode")
    throttle.release(account, stamp)
    limit = _query_int(request, "limit", DEFAULT_STATEMENT_SIZE, 1, MAX_STATEMENT_SIZE)
    found = await request.app[STORE_KEY].statement(account, limit)
    if found is None:  # closed by a sandbox reset since the passcode was checked
        raise HolderUnauthorized("wrong account number or passcode")
    return web.json_response(found.to_json(), headers={"Cache-Control": "no-store"})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers (faults never touch this)."""
    return web.json_response({"status": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """The bank's registry in the Prometheus text format (figures read in memory, no I/O)."""
    app = request.app
    counted = app[METRICS_KEY]
    counted.watch(app.get(DIRECTORY_KEY), app[FAULTS_KEY])
    return web.Response(
        body=generate_latest(counted.registry), headers={"Content-Type": CONTENT_TYPE}
    )


@routes.get("/admin/faults")
async def get_faults(request: web.Request) -> web.Response:
    """The faults in force."""
    return web.json_response(request.app[FAULTS_KEY].faults.to_json())


@routes.put("/admin/faults")
async def put_faults(request: web.Request) -> web.Response:
    """Change some or all fault knobs; answers the faults now in force."""
    injector = request.app[FAULTS_KEY]
    injector.configure(injector.faults.updated(await read_json_object(request)))
    return web.json_response(injector.faults.to_json())
