"""Where mail goes: an SMTP server (aiosmtplib), or files in a local sink when none is configured.

A transport opens a session (one SMTP connection for a batch of mails); ``send`` returns once
the server has accepted the message, and raises TransientMailError (try again later: the server
is down, busy or answered 4xx) or PermanentMailError (5xx: retrying cannot help).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

from transakt.errors import TransaktError

if TYPE_CHECKING:
    from transakt.config import Settings

__all__ = [
    "FileSink",
    "MailSession",
    "MailTransport",
    "PermanentMailError",
    "SmtpTransport",
    "TransientMailError",
    "transport_from_settings",
]


class TransientMailError(TransaktError):
    """The mail was not accepted this time; the same mail may succeed later."""


class PermanentMailError(TransaktError):
    """The server refused the mail for good (a 5xx answer)."""


class MailSession(Protocol):
    """An open connection to where mail goes."""

    async def send(self, message: EmailMessage) -> None:
        """Return once the message is accepted; raise a Transient/PermanentMailError if not."""
        ...


class MailTransport(Protocol):
    """Opens sessions; ``describe()`` says where mail goes, for logs."""

    def session(self) -> AbstractAsyncContextManager[MailSession]:
        """A session for a batch of mails; TransientMailError when it cannot be opened."""
        ...

    def describe(self) -> str:
        """Where mail goes, for logs and banners."""
        ...


def _refusal(code: int, message: str) -> TransaktError:
    if 500 <= code < 600:
        return PermanentMailError(f"the SMTP server refused the mail: {code} {message}")
    return TransientMailError(f"the SMTP server deferred the mail: {code} {message}")


class _SmtpSession:
    __slots__ = ("_client",)

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self._client = client

    async def send(self, message: EmailMessage) -> None:
        """Return once the server accepted the message."""
        try:
            errors, _response = await self._client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            refusals = error.recipients
            code = min((r.code for r in refusals), default=450)
            raise _refusal(code, "; ".join(r.message for r in refusals)) from error
        except aiosmtplib.SMTPResponseException as error:
            raise _refusal(error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientMailError(f"the SMTP server is unavailable: {error!r}") from error
        if errors:  # a partial refusal: every mail here has exactly one recipient
            response = next(iter(errors.values()))
            raise _refusal(response.code, response.message)


class SmtpTransport:
    """Sends through an SMTP server with aiosmtplib (STARTTLS and login when configured)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"<SmtpTransport {self.describe()}>"

    def describe(self) -> str:
        """``smtp://host:port``."""
        return f"smtp://{self.host}:{self.port}"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """Connect (and log in) once for a batch; QUIT at the end."""
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self._username,
            password=self._password,
            start_tls=self._starttls,
            timeout=self._timeout,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as error:
            raise _refusal(error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientMailError(f"cannot reach {self.describe()}: {error!r}") from error
        try:
            yield _SmtpSession(client)
        finally:
            with suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()


class FileSink:
    """Writes each message as ``<message-id>.eml`` in a directory: the embedded default."""

    # The file name comes from the stable Message-ID and is replaced atomically, so sending the
    # same mail again leaves one file, never a second copy or a torn one.

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"<FileSink {self.directory}>"

    def describe(self) -> str:
        """The sink's directory."""
        return str(self.directory)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """Make sure the directory exists; every send writes one file."""
        try:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        except OSError as error:
            raise TransientMailError(f"cannot create {self.directory}: {error!r}") from error
        yield self

    async def send(self, message: EmailMessage) -> None:
        """Write the message to its file."""
        identifier = str(message["Message-ID"] or "").strip("<>").partition("@")[0]
        if not identifier or not identifier.isalnum():
            raise PermanentMailError("the message has no usable Message-ID")
        try:
            await asyncio.to_thread(self._write, identifier, message.as_bytes())
        except OSError as error:
            raise TransientMailError(f"cannot write to {self.directory}: {error!r}") from error

    def _write(self, identifier: str, data: bytes) -> None:
        target = self.directory / f"{identifier}.eml"
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise


def transport_from_settings(settings: Settings) -> MailTransport:
    """SMTP when ``smtp_host`` is set, else the file sink under ``data_dir/mail``."""
    if settings.smtp.host is None:
        return FileSink(settings.data_dir.expanduser() / "mail")
    password = settings.smtp.password
    return SmtpTransport(
        settings.smtp.host,
        settings.smtp.port,
        username=settings.smtp.username,
        password=password.get_secret_value() if password is not None else None,
        starttls=settings.smtp.starttls,
        timeout=settings.smtp.timeout_seconds,
    )
