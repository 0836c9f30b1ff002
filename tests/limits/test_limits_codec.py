"""Across a cluster the limit notice and the refusal cross nodes through the wallet codec."""

from __future__ import annotations

from transakt.actors.limits import SpendingChanged
from transakt.composition.cluster import wallet_codec
from transakt.errors import LimitExceeded, ReviewDecided


def test_the_spending_notice_and_the_limit_refusal_cross_the_wire() -> None:
    codec = wallet_codec()
    notice = SpendingChanged("wal_1")
    name = codec.name_of(notice)
    [decoded] = codec.decode_frame(codec.frame((name, notice)))[1:]
    assert codec.value(name, decoded) == notice

    refusal = LimitExceeded("over", window="daily", limit=100, remaining=0, resets_at="x")
    wire, fields = codec.error_fields(refusal)
    rebuilt = codec.error(wire, fields)
    assert isinstance(rebuilt, LimitExceeded)
    assert rebuilt.details == refusal.details and rebuilt.message == "over"
    wire, fields = codec.error_fields(ReviewDecided("decided"))
    assert isinstance(codec.error(wire, fields), ReviewDecided)
