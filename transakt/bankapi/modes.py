"""The sandbox bank's outage modes: named sets of fault knobs a newcomer can switch between.

``transakt bank --mode`` starts the bank in one, and a wallet node in dev mode switches the
bank's mode through ``PUT /api/v1/sandbox/bank``. What each mode does to the wallet's gateway:

- ``normal``: no faults; a deposit posts in a few milliseconds.
- ``slow``: every call waits ``SLOW_LATENCY_MS`` first, below the gateway's default call timeout
  (2 s), so deposits stay visibly pending for a moment and then post.
- ``down``: the bank answers every call 503 (``refuse_all``). The gateway counts failures, its
  breaker opens, and deposits and withdrawals stay pending in the buffer; back in ``normal``,
  the breaker's probe lets them through and they post, each exactly once.
- ``refusing``: the bank is up but declines every new money movement (``decline_all``): the
  wallet voids deposits and withdrawals with the bank's reason, ``declined``. The breaker stays
  closed, since a refusal is an answer.

A bank's faults that match no mode exactly (a partial ``failure_rate``, set through
``/admin/faults``) are shown as the nearest one: down when it fails everything, slow when it
delays, normal otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final, Literal, get_args

from transakt.bankapi.faults import Faults

__all__ = ["MODES", "SLOW_LATENCY_MS", "BankMode", "faults_for", "mode_of"]

BankMode = Literal["normal", "slow", "down", "refusing"]
MODES: Final[tuple[BankMode, ...]] = get_args(BankMode)

SLOW_LATENCY_MS: Final = 1500


def faults_for(mode: BankMode, base: Faults | None = None) -> Faults:
    """The faults of ``mode``: every knob a mode sets, over ``base`` (its seed is kept)."""
    base = base or Faults()
    return replace(
        base,
        latency_ms=SLOW_LATENCY_MS if mode == "slow" else 0,
        failure_rate=0.0,
        refuse_all=mode == "down",
        decline_all=mode == "refusing",
    )


def mode_of(faults: Faults) -> BankMode:
    """The mode these faults amount to (the nearest one, for knobs set by hand)."""
    if faults.refuse_all or faults.failure_rate >= 1:
        return "down"
    if faults.decline_all:
        return "refusing"
    if faults.latency_ms:
        return "slow"
    return "normal"
