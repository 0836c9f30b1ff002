"""One rule for human text (names, memos) shared by the wallet and the sandbox bank.

Text a person types is shown to other people: in the dashboard, in e-mails, in a bank
statement. So what is stored is what everyone sees: Unicode in its composed form (NFC), every
kind of space (a no-break space, a thin space) written as a plain space, and nothing that is
invisible or that changes how the text around it is displayed:

* control characters (``Cc``; a memo may keep line breaks and tabs), surrogates, private-use
  and unassigned code points;
* format characters (``Cf``): the bidirectional overrides and isolates (U+202A-U+202E,
  U+2066-U+2069) that make "moc.knab" read as "bank.com", the zero-width space, non-joiner and
  word joiner, the byte order mark, soft hyphens, tag characters;
* line and paragraph separators (U+2028, U+2029).

The one exception is the zero-width joiner (U+200D) between two emoji, which is how emoji such
as a family or a profession are spelled; anywhere else it is refused too.

Names compare by :func:`name_key`: accents, case, punctuation and runs of spaces do not count,
so "José  Müller-Lüdenscheidt" matches "jose muller ludenscheidt", as banks match holder names.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["TextRefused", "clean_name", "clean_text", "name_key", "names_match"]

_ZERO_WIDTH_JOINER: Final = "\u200d"
# Code point categories never accepted (Cf is handled apart because of the joiner).
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
# What may stand on either side of a zero-width joiner in an emoji sequence: symbols, emoji
# modifiers (Sk) and the variation selector that asks for emoji presentation (Mn).
_EMOJI_PARTS: Final = frozenset({"So", "Sk", "Mn"})
_MULTILINE_CONTROLS: Final = frozenset("\n\t")


class TextRefused(ValueError):
    """The text holds a character the rule refuses, or is too long or empty."""


def _joins_emoji(text: str, index: int) -> bool:
    if index == 0 or index == len(text) - 1:
        return False
    before = unicodedata.category(text[index - 1])
    after = unicodedata.category(text[index + 1])
    return before in _EMOJI_PARTS and after == "So"


def clean_text(value: str, *, max_length: int, multiline: bool = False) -> str:
    """``value`` in the stored form (NFC, plain spaces), or TextRefused saying why.

    With ``multiline`` a line break (a CR LF or a lone CR becomes LF) and a tab are kept.
    """
    if not isinstance(value, str):
        raise TextRefused("must be a string")
    if len(value) > max_length * 4:
        # Cheap bound before normalising: NFC never shrinks text below a quarter.
        raise TextRefused(f"must be at most {max_length} characters")
    if value.isascii() and value.isprintable():
        text = value  # the common case, checked in C: nothing to normalise or refuse
    else:
        if multiline:
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        text = unicodedata.normalize("NFC", value)
        parts: list[str] = []
        for index, char in enumerate(text):
            category = unicodedata.category(char)
            if multiline and char in _MULTILINE_CONTROLS:
                parts.append(char)
            elif category == "Zs":
                parts.append(" ")
            elif category in _REFUSED_CATEGORIES:
                raise TextRefused("must not contain control characters or unassigned code points")
            elif category == "Cf":
                if char != _ZERO_WIDTH_JOINER or not _joins_emoji(text, index):
                    raise TextRefused(
                        "must not contain invisible formatting characters "
                        "(direction overrides, zero-width characters)"
                    )
                parts.append(char)
            else:
                parts.append(char)
        text = "".join(parts)
    if len(text) > max_length:
        raise TextRefused(f"must be at most {max_length} characters")
    return text


def clean_name(value: str, *, max_length: int) -> str:
    """A person's name: :func:`clean_text` on one line, trimmed, inner spaces collapsed."""
    text = " ".join(clean_text(value, max_length=max_length).split())
    if not text:
        raise TextRefused("must not be empty")
    return text


def name_key(name: str) -> str:
    """The form two names are compared in: no accents, no case, no punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFKD", name)
    kept = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category.startswith("M"):
            continue  # a combining accent
        kept.append(" " if category.startswith(("P", "Z", "C", "S")) else char)
    return " ".join("".join(kept).casefold().split())


def names_match(given: str, held: str) -> bool:
    """True when two names are the same person's by :func:`name_key`."""
    key = name_key(given)
    return bool(key) and key == name_key(held)
