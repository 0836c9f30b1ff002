"""How the processes log: one record per line, whatever a client managed to put in a message.

A log line is only evidence if nobody else can write one. Messages quote what clients send
(paths, e-mail addresses, names), and a CR or LF in such a value, once written out as is, starts
a line that looks like the process wrote it. So the formatter escapes every control character of
a record's message (``\\r``, ``\\n``, ``\\x1b``, ``\\u2028``...), the way ``repr`` would, before
it is written; the traceback of an exception record is appended unescaped, as Python formats it.

Two formats: ``text`` for people, and ``json`` for a log shipper (one object per line, with
the time, level, logger, message and, for an exception, its traceback). JSON escapes C0
controls itself; the formatter also escapes DEL, the C1 controls and the Unicode line and
paragraph separators, which JSON allows raw but which some readers take for line ends.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

__all__ = [
    "TEXT_FORMAT",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "configure_logging",
    "escape_controls",
]

LogFormat = Literal["text", "json"]

TEXT_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# What can end or rewrite a line on a terminal or in a log pipeline: C0 controls (CR, LF, tab,
# ESC...), DEL, C1 controls (NEL among them) and the Unicode line and paragraph separators.
_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# What json.dumps(ensure_ascii=False) leaves raw of the above (it escapes C0 itself).
_JSON_RAW_CONTROLS: Final = re.compile("[\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    named = _NAMED.get(character)
    if named is not None:
        return named
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with each control character written as its escape (``\\n``, ``\\x00``...).

    Printable text, backslashes included, is kept as it is: the point is that one record stays
    one line, not that the escaping can be undone.
    """
    if _CONTROLS.search(text) is None:  # the usual case: nothing to copy
        return text
    return _CONTROLS.sub(_escape, text)


class TextFormatter(logging.Formatter):
    """``logging.Formatter`` whose formatted record never spans lines (the traceback aside).

    ``format`` builds ``formatMessage`` (the format string filled in, the message included)
    and then appends the exception's traceback and the stack; only the first part is escaped.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The record's line as the format string gives it, with control characters escaped."""
        return escape_controls(super().formatMessage(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (RFC 3339 UTC), ``level``, ``logger``, ``message``,
    and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        # Only inside strings can these occur, where \uXXXX is their JSON escape.
        return _JSON_RAW_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", line)


def _text_formatter() -> logging.Formatter:
    return TextFormatter(TEXT_FORMAT)


_FORMATTERS: Final[Mapping[str, Callable[[], logging.Formatter]]] = {
    "text": _text_formatter,
    "json": JsonFormatter,
}

# Loggers that say too much below DEBUG: pgserver logs every command line it runs at INFO.
_QUIET_UNLESS_DEBUG: Final = ("pgserver",)


def configure_logging(level: str, fmt: LogFormat = "text") -> None:
    """Send every record at ``level`` or above to stderr, one per line, in format ``fmt``.

    Raises ValueError for a level name ``logging`` does not know (``INFO``, ``debug``...).
    Replaces whatever handlers the root logger had, so calling it twice is harmless.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown level {level!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(_FORMATTERS[fmt]())
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    if numeric > logging.DEBUG:
        for name in _QUIET_UNLESS_DEBUG:
            logging.getLogger(name).setLevel(logging.WARNING)
