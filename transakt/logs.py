"""How the processes log: one record per line, whatever a client managed to put in a message.

A log line is only evidence if nobody else can write one. Messages quote what clients send
(paths, e-mail addresses, names), and a CR or LF in such a value, once written out as is, starts
a line that looks like the process wrote it. So the formatter escapes every control character of
a record's message (``\\r``, ``\\n``, ``\\x1b``, ``\\u2028``...), the way ``repr`` would, before
it is written; the traceback of an exception record is appended unescaped, as Python formats it.

Only the text format exists today. ``configure_logging`` takes the format by name, so a JSON
format (one object per record, for a log shipper) is one more formatter in ``_FORMATTERS``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Final, Literal

__all__ = [
    "TEXT_FORMAT",
    "LogFormat",
    "TextFormatter",
    "configure_logging",
    "escape_controls",
]

LogFormat = Literal["text"]

TEXT_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# What can end or rewrite a line on a terminal or in a log pipeline: C0 controls (CR, LF, tab,
# ESC...), DEL, C1 controls (NEL among them) and the Unicode line and paragraph separators.
_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


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


def _text_formatter() -> logging.Formatter:
    return TextFormatter(TEXT_FORMAT)


_FORMATTERS: Final[Mapping[str, Callable[[], logging.Formatter]]] = {"text": _text_formatter}

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
