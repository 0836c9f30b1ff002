"""WalletService: the use cases behind the HTTP API, expressed through actors and storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from transakt.actors.wallet import Debit, WalletActor
from transakt.errors import (
    CurrencyMismatch,
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    RecipientUnverified,
    ValidationFailed,
)
from transakt.ids import uuid4_hex
from transakt.models import Transfer, Wallet
from transakt.runtime import ActorSystem
from transakt.services.idempotency import Idempotency, IdempotencyKey, Replay
from transakt.services.throttle import Throttle
from transakt.storage.outbox import wallets_with_snapshot
from transakt.storage.records import (
    Applied,
    IdempotencyRecord,
    NewTransfer,
    Outcome,
    Rejected,
)
from transakt.storage.repository import Repository, WalletOwner

__all__ = [
    "IdempotencyKey",
    "Recipient",
    "Replay",
    "TransferRequest",
    "WalletService",
    "idempotent_transfer_id",
    "new_id",
    "new_transfer",
    "settlement_id",
]

_MAX_KNOWN_OWNERS = 200_000
_UNVERIFIED = (
    "this person has not verified their e-mail address yet, so it cannot receive payments; "
    "pay their wallet id, or ask them to verify it"
)

# Transfer ids derived from (user, Idempotency-Key) live in their own UUID namespace.
_IDEMPOTENT_IDS = uuid.UUID("6f1c2a8e-4b7d-5e9f-8a3b-1c2d3e4f5a6b")


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A P2P payment as the client asked for it (already validated for shape)."""

    from_wallet: str
    to_wallet: str | None
    to_email: str | None
    amount: int
    currency: str
    memo: str | None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who an e-mail address pays: the holder's name as their bank confirmed it."""

    email: str
    name: str
    currencies: list[str]

    def to_json(self) -> dict[str, object]:
        """The public shape of a look-up."""
        return {"email": self.email, "name": self.name, "currencies": self.currencies}


def new_id(prefix: str) -> str:
    """A fresh random id with a readable prefix (``usr_``, ``wal_``, ``trf_``)."""
    return f"{prefix}_{uuid4_hex()}"


def settlement_id(currency: str) -> str:
    """The id of the bank settlement account of a currency."""
    return f"settlement_{currency}"


def idempotent_transfer_id(user_id: str, key: str) -> str:
    """The transfer id a (user, Idempotency-Key) pair always maps to: replays cannot duplicate."""
    name = user_id + "\x00" + key
    return f"trf_{uuid.uuid5(_IDEMPOTENT_IDS, name).hex}"


def new_transfer(user_id: str, idempotency: IdempotencyKey | None, **fields: Any) -> NewTransfer:
    """A transfer ``user_id`` asks for. With an Idempotency-Key its id derives from the key (a
    replay cannot apply twice) and the key's answer is stored with it, in its transaction."""
    if idempotency is None:
        return NewTransfer(id=new_id("trf"), initiator_id=user_id, **fields)
    return NewTransfer(
        id=idempotent_transfer_id(user_id, idempotency.key),
        initiator_id=user_id,
        idempotency=IdempotencyRecord(user_id, idempotency.key, idempotency.request_hash),
        **fields,
    )


class WalletService:
    """Wallets, history and P2P transfers."""

    def __init__(
        self,
        repository: Repository,
        system: ActorSystem,
        idempotency: Idempotency,
        throttle: Throttle | None = None,
        *,
        request_timeout: float = 10.0,
    ) -> None:
        self._repository = repository
        self._system = system
        self._idempotency = idempotency
        self._throttle = throttle
        self._request_timeout = request_timeout
        # Owner and currency of a wallet never change: known ones are kept off the hot path.
        # A plain dict: an async LRU wrapper cost ~4% of a transfer's CPU in the profile.
        self._owners: dict[str, WalletOwner] = {}

    # -- wallets -----------------------------------------------------------------------------

    async def list_wallets(self, user_id: str) -> list[Wallet]:
        """The user's wallets."""
        return await self._repository.wallets_of(user_id)

    async def create_wallet(
        self, user_id: str, currency: str, idempotency: IdempotencyKey | None
    ) -> Wallet:
        """Open a wallet in another currency (one per currency); keeps its answer under the key."""
        record = (
            None
            if idempotency is None
            else IdempotencyRecord(user_id, idempotency.key, idempotency.request_hash)
        )
        return await self._repository.create_wallet(
            new_id("wal"), user_id, currency, settlement_id(currency), record
        )

    async def live_snapshot(self, user_id: str) -> tuple[str, list[Wallet]]:
        """The user's wallets and the transaction snapshot they were read in, for a live feed
        (events of transactions the snapshot already shows are not sent on)."""
        return await wallets_with_snapshot(self._repository.pool, user_id)

    async def get_wallet(self, user_id: str, wallet_id: str) -> Wallet:
        """One of the user's wallets."""
        wallet = await self._repository.wallet(wallet_id)
        if wallet is None:
            raise NotFound("no such wallet", wallet=wallet_id)
        if wallet.user_id != user_id:
            raise Forbidden("this wallet is not yours", wallet=wallet_id)
        return wallet

    # -- recipients --------------------------------------------------------------------------

    async def recipient(self, user_id: str, email: str) -> Recipient:
        """Whom a payment to ``email`` reaches, before paying (throttled: it can be guessed)."""
        if self._throttle is not None:
            await self._throttle.hit("lookup_user", user_id)
        found = await self._repository.recipient_profile(email)
        if found is None:
            raise NotFound("no user has this e-mail", field="email")
        name, verified, currencies = found
        if not verified:
            raise RecipientUnverified(_UNVERIFIED, field="email")
        return Recipient(email=email, name=name, currencies=currencies)

    # -- transfers ---------------------------------------------------------------------------

    async def transfer(
        self, user_id: str, request: TransferRequest, idempotency: IdempotencyKey | None
    ) -> Transfer | Replay:
        """Pay another wallet (by id or by its owner's e-mail); answers once durable.

        A keyed request is not looked up first: its transfer id derives from the key, so the
        ledger itself finds a replay (a Duplicate: the key is taken), and only then is the
        stored answer read. Every payment saves a database round trip that way.
        """
        if (request.to_wallet is None) == (request.to_email is None):
            raise ValidationFailed(
                "give exactly one of to_wallet and to_email", fields=["to_wallet", "to_email"]
            )
        await self.owned_wallet(user_id, request.from_wallet, request.currency)
        to_wallet = await self._recipient_wallet(request)
        if to_wallet == request.from_wallet:
            raise ValidationFailed("a wallet cannot pay itself", field="to_wallet")
        transfer = new_transfer(
            user_id,
            idempotency,
            kind="p2p",
            status="posted",
            from_account=request.from_wallet,
            to_account=to_wallet,
            amount=request.amount,
            currency=request.currency,
            memo=request.memo,
            metadata=request.metadata,
        )
        return await self.pay(user_id, idempotency, transfer)

    async def pay(
        self, user_id: str, idempotency: IdempotencyKey | None, transfer: NewTransfer
    ) -> Transfer | Replay:
        """Have the payer's actor decide ``transfer``: the transfer made, the refusal raised, or
        (the id taken already) the answer the first request got."""
        outcome = await self.debit(transfer)
        if isinstance(outcome, Applied):
            return outcome.transfer
        if isinstance(outcome, Rejected):
            raise outcome.error
        return await self.answer_duplicate(user_id, idempotency, outcome.transfer_id)

    async def answer_duplicate(
        self, user_id: str, idempotency: IdempotencyKey | None, transfer_id: str
    ) -> Transfer | Replay:
        """The answer when the ledger found the transfer id or the key taken: the first request
        with this key was answered already, so this one gets that answer (or, with another
        body, idempotency_key_reused).

        Without a key the id was made fresh for this very request, so a duplicate can only be
        this request applied already: its command was delivered twice (a cluster node died
        after committing and before answering, and the broker gave the command to the next
        owner). The answer is then the transfer as committed.
        """
        if idempotency is not None:
            replay = await self._idempotency.replay(user_id, idempotency)
            if replay is not None:
                return replay
        else:
            committed = await self._repository.transfer(transfer_id)
            if committed is not None and committed.initiator_id == user_id:
                return committed
        raise IdempotencyKeyReused("this transfer id was already used", transfer=transfer_id)

    async def debit(self, transfer: NewTransfer) -> Outcome:
        """Have the paying wallet's actor approve the transfer and commit it."""
        wallet = self._system.entity(WalletActor, transfer.from_account)
        outcome: Outcome = await wallet.ask(Debit(transfer), timeout=self._request_timeout)
        return outcome

    async def get_transfer(self, user_id: str, transfer_id: str) -> Transfer:
        """A transfer the user is a party to (payer or payee)."""
        transfer = await self._repository.transfer(transfer_id)
        if transfer is None:
            raise NotFound("no such transfer", transfer=transfer_id)
        parties = {transfer.initiator_id}
        for wallet_id in (transfer.from_wallet, transfer.to_wallet):
            owner = await self._owner_of(wallet_id)
            if owner is not None:
                parties.add(owner.user_id)
        if user_id not in parties:
            raise NotFound("no such transfer", transfer=transfer_id)
        return transfer

    # -- helpers -----------------------------------------------------------------------------

    async def _owner_of(self, wallet_id: str) -> WalletOwner | None:
        owner = self._owners.get(wallet_id)
        if owner is None:
            owner = await self._repository.wallet_owner(wallet_id)
            if owner is not None:  # unknown ids are not remembered: they may be created later
                if len(self._owners) >= _MAX_KNOWN_OWNERS:
                    self._owners.clear()  # crude bound; refilling costs one read per wallet
                self._owners[wallet_id] = owner
        return owner

    async def owned_wallet(
        self, user_id: str, wallet_id: str, currency: str | None = None
    ) -> WalletOwner:
        """The wallet, if it is the user's (and holds ``currency``, when given)."""
        owner = await self._owner_of(wallet_id)
        if owner is None:
            raise NotFound("no such wallet", wallet=wallet_id)
        if owner.user_id != user_id:
            raise Forbidden("this wallet is not yours", wallet=wallet_id)
        if currency is not None and owner.currency != currency:
            raise CurrencyMismatch(
                f"the wallet holds {owner.currency}, not {currency}", field="currency"
            )
        return owner

    async def recipient_wallet(self, request: TransferRequest) -> str:
        """The wallet a payment request reaches (by wallet id or the payee's e-mail), checked
        as a payment checks it."""
        if (request.to_wallet is None) == (request.to_email is None):
            raise ValidationFailed(
                "give exactly one of to_wallet and to_email", fields=["to_wallet", "to_email"]
            )
        wallet_id = await self._recipient_wallet(request)
        if wallet_id == request.from_wallet:
            raise ValidationFailed("a wallet cannot pay itself", field="to_wallet")
        return wallet_id

    async def _recipient_wallet(self, request: TransferRequest) -> str:
        if request.to_email is not None:
            found = await self._repository.recipient_by_email(request.to_email.strip().lower())
            if found is None:
                raise NotFound("no user has this e-mail", field="to_email")
            recipient, verified = found
            if not verified:
                raise RecipientUnverified(_UNVERIFIED, field="to_email")
            wallet_id = await self._repository.wallet_of_user(recipient, request.currency)
            if wallet_id is None:
                raise CurrencyMismatch(
                    f"the recipient has no {request.currency} wallet", field="currency"
                )
            return wallet_id
        assert request.to_wallet is not None
        owner = await self._owner_of(request.to_wallet)
        if owner is None:
            raise NotFound("no such wallet", field="to_wallet", wallet=request.to_wallet)
        if owner.currency != request.currency:
            raise CurrencyMismatch(
                f"to_wallet holds {owner.currency}, not {request.currency}", field="to_wallet"
            )
        return request.to_wallet
