"""What a lost or unreachable database looks like (defined in ``transakt.outages``)."""

from __future__ import annotations

from transakt.outages import STORAGE_UNAVAILABLE

__all__ = ["STORAGE_UNAVAILABLE"]
