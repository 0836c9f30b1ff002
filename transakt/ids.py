"""Random ids, cheaply."""

from __future__ import annotations

import os

__all__ = ["uuid4_hex"]


def uuid4_hex() -> str:
    """What ``uuid.uuid4().hex`` gives (version and variant bits included), at a third of the cost.

    uuid.UUID's constructor validates and converts through an int; only the hex is wanted. Ids
    are made for every request and every payment, so this shows in a profile.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()
