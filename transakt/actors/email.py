"""EmailActor: plans mails from transfer events and delivers them, each mail at least once.

Its progress lives in PostgreSQL, never in the actor: events are planned into ``mail_deliveries``
rows in one transaction; a batch of due rows is claimed, and each row is marked sent right after
the server accepted it (one by one). While the SMTP server is down, claimed mails are made due
again with exponential backoff; nothing is lost.

A claim belongs to the claiming worker's database session (``transakt.storage.mail``): it ends
when the worker releases it after its batch, or when the worker's connection closes, which is
what happens when its process dies. So a mailer killed mid-batch costs:

- at most one duplicate: the one mail the server accepted before it could be marked. That copy
  carries the same Message-ID, so the receiving side can drop it. (Exactly-once over SMTP is
  impossible; at-least-once with an idempotent Message-ID is the honest promise.)
- no wait beyond a poll: that mail and the rest of its batch are claimed again by the next poll
  of any surviving worker (``poll_seconds``), not after a lease.

A worker that is alive keeps its claims however slowly it sends, so no other worker sends them
too. ``lease_seconds`` is only the backstop for a worker whose session PostgreSQL still believes
connected but which stopped making progress (a hung process, a host gone without closing its
connection): its claims are taken over once it has neither marked nor renewed them for that
long. A live worker renews the lease of the rest of its batch before a send once half of it has
passed, so it is overtaken only if a single mail takes longer than half the lease.

Any number of these actors, in any number of processes, share the work through
``FOR UPDATE SKIP LOCKED``. Events on the bus only wake them: the database says what to do.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import asyncpg

from transakt.events.mail import (
    MailSession,
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
    """How an EmailActor works: sender, batch, lease, backoff and the safety-net poll.

    ``poll_seconds`` is also how soon the mails of a worker that died are taken over;
    ``lease_seconds`` only how long a worker that seems connected but makes no progress keeps
    its claims.
    """

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


async def _deliver(session: MailSession, message: EmailMessage) -> None:
    """Hand the message to the session; an error the transport did not classify is transient."""
    try:
        await session.send(message)
    except (PermanentMailError, TransientMailError):
        raise
    except Exception as error:
        # Whether the server took it is unknown. Retrying with backoff (not crashing the actor)
        # keeps a mail that trips a bug from taking every worker down in turn: a dead worker's
        # mails are claimed again at once, so the crash would move from worker to worker.
        log.exception("sending a mail failed unexpectedly; it will be retried")
        raise TransientMailError(f"sending failed unexpectedly: {error!r}") from error


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
        """Stop listening; a batch cut short is released with the connection, for other workers."""
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
            due = await self._claim_and_send(connection)
            if planned == batch or len(due) == batch:
                self.wake()  # more work is waiting: carry on after any other message
                return None
            wait = await store.seconds_until_due(connection)
        poll = self._config.poll_seconds
        self._wake_in(poll if wait is None else min(max(wait, 0.0), poll))
        return None

    async def _claim_and_send(self, connection: Any) -> list[store.MailDelivery]:
        """Claim a batch, send it, release the claim; never hand the pool a claiming session."""
        try:
            claimed_at = time.monotonic()
            due = await store.claim_due(
                connection, self._config.batch_size, self._config.lease_seconds
            )
            if due:
                await self._send(connection, due, claimed_at)
                await store.release_claims(connection)
        except BaseException:
            # Failed, or cancelled mid-batch (stopping): the claim lock is session state (a
            # failed claim statement may even have taken it), and a connection in an unknown
            # state cannot be trusted to release it. Closing the session releases it for
            # certain and the pool replaces the connection; the mails not marked are the
            # other workers' at their next poll.
            connection.terminate()
            raise
        return due

    async def _send(
        self, connection: Any, due: list[store.MailDelivery], claimed_at: float
    ) -> None:
        retries: list[tuple[store.MailDelivery, float, str]] = []
        lease = self._config.lease_seconds
        # The lease runs on PostgreSQL's clock from just after claimed_at: real time, not the
        # actor system's (possibly virtual) clock.
        renewed_at = claimed_at
        unsent = deque(due)  # claimed, and neither marked nor given up yet
        try:
            async with self._transport.session() as session:
                while unsent:
                    if time.monotonic() - renewed_at > lease / 2:
                        # Slow but alive: keep the rest of the batch before the backstop lets
                        # another worker take it, and drop any mail that was taken meanwhile.
                        renewed_at = time.monotonic()
                        held = await store.renew_claims(connection, list(unsent), lease)
                        unsent = deque(d for d in unsent if (d.event_id, d.recipient) in held)
                        if not unsent:
                            break
                    delivery = unsent[0]
                    try:
                        message = _render(delivery, self._config.sender)
                        await _deliver(session, message)
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
                        retries = [self._retry(d, error) for d in unsent]
                        break
                    else:
                        self.sent += 1
                        # Marked one by one, right after acceptance: a crash resends at most one.
                        await store.mark_sent(connection, delivery)
                    unsent.popleft()
        except TransientMailError as error:  # the session could not be opened (or closed)
            retries = [self._retry(d, error) for d in unsent]
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
