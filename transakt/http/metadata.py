"""Metadata: a small JSON object a client attaches to a transfer, hold or batch."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from transakt.text import TextRefused, clean_text
from transakt.web.json import canonical_json

__all__ = ["MAX_KEYS", "MAX_METADATA_BYTES", "OptionalMetadata", "parse_metadata"]

MAX_KEYS: Final = 20
MAX_METADATA_BYTES: Final = 2_048  # as canonical JSON; the database allows twice that
_KEY: Final = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_MAX_VALUE_LENGTH: Final = 200


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("metadata", message)


def parse_metadata(value: Any) -> dict[str, str | int | bool | None]:
    """A flat object of up to 20 keys (letters, digits, ``_.-``, up to 40) whose values are
    text (by the memo rule: no invisible or direction characters, up to 200), integers,
    booleans or null; 2 KiB at most."""
    if not isinstance(value, dict):
        raise _invalid("metadata must be a JSON object")
    if len(value) > MAX_KEYS:
        raise _invalid(f"metadata holds at most {MAX_KEYS} keys")
    cleaned: dict[str, str | int | bool | None] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise _invalid("metadata keys are 1 to 40 letters, digits, '_', '.' or '-'")
        if item is None or isinstance(item, bool):
            cleaned[key] = item
        elif isinstance(item, int):
            if abs(item) > 2**53:
                raise _invalid("metadata integers stay within ±2^53")
            cleaned[key] = item
        elif isinstance(item, str):
            try:
                cleaned[key] = clean_text(item, max_length=_MAX_VALUE_LENGTH)
            except TextRefused as error:
                raise _invalid(f"metadata {key}: {error}") from None
        else:
            raise _invalid("metadata values are text, integers, booleans or null")
    if len(canonical_json(cleaned).encode()) > MAX_METADATA_BYTES:
        raise _invalid(f"metadata takes at most {MAX_METADATA_BYTES} bytes")
    return cleaned


OptionalMetadata = Annotated[
    dict[str, Any] | None,
    BeforeValidator(lambda value: None if value is None else parse_metadata(value)),
    WithJsonSchema(
        {
            "type": ["object", "null"],
            "maxProperties": MAX_KEYS,
            "propertyNames": {"pattern": _KEY.pattern},
            "additionalProperties": {
                "type": ["string", "integer", "boolean", "null"],
                "maxLength": _MAX_VALUE_LENGTH,
            },
            "description": "your own key/value pairs, shown back with the transfer (2 KiB)",
        }
    ),
]
