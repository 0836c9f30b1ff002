"""The wallet on the cluster: which messages cross between nodes, and the transport that carries
them. Only used when ``TRANSAKT_RABBITMQ_URL`` is set; without it a node runs alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import transakt.bankapi.errors
import transakt.errors
import transakt.gateway.breaker
import transakt.storage.writer
from transakt.actors.limits import SpendingChanged
from transakt.actors.wallet import Debit, DebitMany, ItemOutcome, ManyOutcome, WalletActor
from transakt.config import Settings
from transakt.errors import TransaktError
from transakt.models import Transfer
from transakt.outages import STORAGE_UNAVAILABLE
from transakt.rabbitmq import Codec, RabbitTransport
from transakt.storage.records import Applied, Duplicate, IdempotencyRecord, NewTransfer, Rejected

__all__ = ["WALLET_KIND", "wallet_codec", "wallet_transport"]

#: The entity kind sharded over the nodes: one owner per wallet shard.
WALLET_KIND = WalletActor.__name__

# Every module that defines errors which may answer a debit; imported so their classes exist.
_ERROR_MODULES = (
    transakt.errors,
    transakt.storage.writer,
    transakt.gateway.breaker,
    transakt.bankapi.errors,
)


def _subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _storage_unavailable(state: dict[str, Any]) -> BaseException:
    # The owner lost its database: the same 503 "retry later" a local failure would give.
    return ConnectionError(str(state.get("message", "the database is unavailable")))


def wallet_codec() -> Codec:
    """The wire format of wallet nodes: the debit command, its outcomes, the spending notice,
    and every error of the
    project (by class name; each node runs the same code, so each knows them all)."""
    codec = Codec()
    codec.register(Debit, NewTransfer, IdempotencyRecord, Applied, Duplicate, Rejected, Transfer)
    codec.register(DebitMany, ItemOutcome, ManyOutcome)  # batches
    codec.register(SpendingChanged)  # a limit set, a held payment voided: the actor reloads
    assert _ERROR_MODULES  # imported for their classes
    codec.register_error(TransaktError)
    for error in _subclasses(TransaktError):
        codec.register_error(error)
    for outage in STORAGE_UNAVAILABLE:
        codec.register_error(outage, _storage_unavailable, "transakt.storage_unavailable")
    return codec


def wallet_transport(settings: Settings) -> RabbitTransport | None:
    """The node's transport when RabbitMQ is configured: wallets sharded, this node hosting."""
    url = settings.rabbitmq.url
    if not url:
        return None
    return RabbitTransport(
        url,
        wallet_codec(),
        node_id=settings.node_id,
        shards=settings.shards,
        sharded={WALLET_KIND},
        prefix=settings.rabbitmq.prefix,
        probe_seconds=settings.rabbitmq.probe_seconds,
        prefetch=settings.rabbitmq.prefetch,
    )
