"""Redis keys and group names of the domain actors (one place, so operators can find them)."""

from __future__ import annotations

from typing import Final

# The bank request buffer: a stream read through a consumer group, one consumer per node.
BANK_STREAM: Final = "transakt:bank:requests"
BANK_GROUP: Final = "bank-gateway"
# The transfer ids currently in the stream: the sweep adds a request only when it is not there.
BANK_BUFFERED_IDS: Final = "transakt:bank:buffered"
