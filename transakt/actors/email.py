"""EmailActor: plans mails from transfer events and delivers them, each mail at least once.

Its progress lives in PostgreSQL, never in the actor: events are planned into ``mail_deliveries``
rows in one transaction, a row is claimed under a lease before sending and marked sent only
after the server accepted it. While the SMTP server is down, claimed mails are made due again
with exponential backoff; nothing is lost, and nothing is sent twice except in the one case no
design avoids: a crash after the server accepted a mail and before it was marked. That copy
carries the same Message-ID, so the receiving side can drop it. (Exactly-once over SMTP is
impossible; at-least-once with an idempotent Message-ID is the honest promise.)

Any number of these actors, in any number of processes, share the work through
``FOR UPDATE SKIP LOCKED``. Events on the bus only wake them: the database says what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import asyncpg

from transakt.events.mail import (
    MailTransport,
    PermanentMailError,
    TransientMailError,
    compose,
)
from transakt.events.mail.planning import MAIL_QUEUED_TOPIC, MAIL_TOPICS, plan_mails
from transakt.runtime import Actor, ActorDeadError, MailboxFull, Subscription
from transakt.runtime.clock import TimerHandle
from transakt.storage import mail as store

__all__ = ["EmailActor", "MailConfig", "Poll"]

log = logging.getLogger("transakt.events.mail")


@dataclass(frozen=True, slots=True)
class Poll:
    """Plan new mails and send a batch of the due ones."""


@dataclass(frozen=True, slots=True)
class MailConfig:
    """How an EmailActor works: sender, batch, lease, backoff and the safety-net poll."""

    sender: str
    batch_size: int = 20
    lease_seconds: float = 300.0
    retry_min_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    poll_seconds: float = 1.0


def _render(delivery: store.MailDelivery, sender: str) -> EmailMessage:
    """The delivery's message; a row that cannot be rendered is a permanent failure."""
    try:
        return compose(delivery, sender)
    except Exception as error:
        # A bug or a damaged row: failing this one mail keeps it from blocking every other.
        raise PermanentMailError(f"the mail cannot be rendered: {error!r}") from error


class EmailActor(Actor):
    """Delivers the mails about completed and failed transfers, sharing the work with its peers."""

    def __init__(self, pool: asyncpg.Pool, transport: MailTransport, config: MailConfig) -> None:
        self._pool = pool
        self._transport = transport
        self._config = config
        self._poll_queued = False
        self._timer: TimerHandle | None = None
        self._subscriptions: list[Subscription] = []
        self.sent = 0
        self.retried = 0
        self.failed = 0

    def __repr__(self) -> str:
        return (
            f"<EmailActor {self._transport.describe()} sent={self.sent} "
            f"retried={self.retried} failed={self.failed}>"
        )

    async def started(self) -> None:
        """Wake on every transfer event, and look for work left over from before at once."""
        self._subscriptions = [
            self.system.events.subscribe(topic, self._on_event)
            for topic in (*MAIL_TOPICS, MAIL_QUEUED_TOPIC)
        ]
        self.wake()

    async def stopped(self) -> None:
        """Stop listening; whatever was claimed and not sent is claimed again after its lease."""
        self._unsubscribe()

    async def before_restart(self, error: BaseException, message: Any) -> None:
        """The fresh instance subscribes again; this one must not stay subscribed."""
        self._unsubscribe()

    def _unsubscribe(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_event(self, _topic: str, _event: Any) -> None:
        self.wake()

    def wake(self) -> None:
        """Queue one Poll unless one is already waiting: a burst of events means one poll."""
        if self._poll_queued:
            return
        self._poll_queued = True
        try:
            self.ref.tell(Poll())
        except (MailboxFull, ActorDeadError):
            self._poll_queued = False

    def _wake_in(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.system.call_later(max(delay, 0.0), self.wake)

    async def receive(self, message: Any) -> Any:
        """Handle a Poll: one batch planned, one sent, then decide when to look again."""
        # One batch per message keeps each message short, so the actor stops promptly.
        if not isinstance(message, Poll):
            raise TypeError(f"EmailActor cannot handle {type(message).__name__}")
        self._poll_queued = False
        batch = self._config.batch_size
        async with self._pool.acquire() as connection:
            planned, _mails = await plan_mails(connection, batch)
            due = await store.claim_due(connection, batch, self._config.lease_seconds)
            if due:
                await self._send(connection, due)
            if planned == batch or len(due) == batch:
                self.wake()  # more work is waiting: carry on after any other message
                return None
            wait = await store.seconds_until_due(connection)
        poll = self._config.poll_seconds
        self._wake_in(poll if wait is None else min(max(wait, 0.0), poll))
        return None

    async def _send(self, connection: Any, due: list[store.MailDelivery]) -> None:
        retries: list[tuple[store.MailDelivery, float, str]] = []
        try:
            async with self._transport.session() as session:
                for index, delivery in enumerate(due):
                    try:
                        message = _render(delivery, self._config.sender)
                        await session.send(message)
                    except PermanentMailError as error:
                        self.failed += 1
                        log.error(
                            "mail %s to %s refused: %s",
                            delivery.template,
                            delivery.recipient,
                            error,
                        )
                        await store.mark_failed(connection, delivery, str(error))
                    except TransientMailError as error:
                        # The session is suspect: this mail and the rest wait for the next try.
                        retries = [self._retry(d, error) for d in due[index:]]
                        break
                    else:
                        self.sent += 1
                        # Marked one by one, right after acceptance: a crash resends at most one.
                        await store.mark_sent(connection, delivery)
        except TransientMailError as error:  # the session could not be opened at all
            retries = [self._retry(d, error) for d in due]
        if retries:
            self.retried += len(retries)
            log.warning(
                "%d mail(s) not sent (%s); retrying in %.2fs or later",
                len(retries),
                retries[0][2],
                min(delay for _d, delay, _e in retries),
            )
            await store.mark_retry(connection, retries)

    def _retry(
        self, delivery: store.MailDelivery, error: Exception
    ) -> tuple[store.MailDelivery, float, str]:
        return delivery, self.backoff(delivery.attempts), str(error)

    def backoff(
        self, attempts: int, jitter: Callable[[float, float], float] | None = None
    ) -> float:
        """Delay before the next try after ``attempts`` tries: doubling, capped, ±20% jitter."""
        config = self._config
        base = min(
            config.retry_max_seconds, config.retry_min_seconds * 2.0 ** min(attempts - 1, 60)
        )
        uniform = jitter if jitter is not None else self.system.random.uniform
        return base * uniform(0.8, 1.2)
