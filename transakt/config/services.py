"""The services a process uses, once resolved: configured URLs, or embedded servers' own."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResolvedServices"]


@dataclass(frozen=True, slots=True)
class ResolvedServices:
    """The URLs a node uses: configured ones, or those of the embedded servers it started."""

    database_url: str
    redis_url: str
