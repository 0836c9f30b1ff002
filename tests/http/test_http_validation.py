"""Request validation, request fingerprints and tokens, without a server."""

from __future__ import annotations

import enum
import json
import math
import time
import unicodedata
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from transakt.config import Settings
from transakt.errors import NotFound, Unauthorized, ValidationFailed
from transakt.http.auth import decode_access_token, issue_access_token
from transakt.http.idempotency import request_hash
from transakt.http.schemas import (
    SignupBody,
    TransferBody,
    parse_cursor,
    parse_limit,
    parse_path_id,
    validate_body,
)
from transakt.money import MAX_AMOUNT
from transakt.web.json import _loads, dumps, json_response

SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    jwt_secret=SecretStr("unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"),
)

TRANSFER = {"from_wallet": "wal_a", "to_wallet": "wal_b", "amount": 5, "currency": "EUR"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@given(amount=json_values)
def test_only_positive_integer_amounts_within_bounds_pass(amount: Any) -> None:
    valid = type(amount) is int and 0 < amount <= MAX_AMOUNT
    try:
        parsed = validate_body(TransferBody, {**TRANSFER, "amount": amount})
    except ValidationFailed as error:
        assert not valid
        assert "amount" in error.details["fields"]
    else:
        assert valid
        assert parsed.amount == amount


@given(body=st.dictionaries(st.sampled_from([*TRANSFER, "to_email", "memo", "x"]), json_values))
def test_any_body_either_validates_or_raises_validation_failed(body: dict[str, Any]) -> None:
    try:
        validate_body(TransferBody, body)
    except ValidationFailed as error:
        assert error.details["fields"]


_REFUSED = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})


def _refused_by_the_rule(text: str, *, multiline: bool) -> bool:
    """The documented rule of transakt.text, written out again as the oracle."""
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if multiline and char in "\n\t":
            continue
        if category in _REFUSED:
            return True
        if category == "Cf":
            joins_emoji = (
                char == "\u200d"
                and 0 < index < len(text) - 1
                and unicodedata.category(text[index - 1]) in ("So", "Sk", "Mn")
                and unicodedata.category(text[index + 1]) == "So"
            )
            if not joins_emoji:
                return True
    return False


texts = st.text(max_size=30) | st.lists(
    st.sampled_from(["a", " ", "\u00a0", "\u202e", "\u200b", "\u200d", "\u2028", "\r\n",
                     "\U0001f469", "\U0001f4bb", "\ufe0f", "e\u0301", "\n", "\x00"]),
    max_size=8,
).map("".join)  # fmt: skip


@given(memo=texts, wallet=texts)
def test_text_is_refused_exactly_when_the_shared_rule_says_so(memo: str, wallet: str) -> None:
    # The memo keeps line breaks and tabs; nothing invisible or controlling is ever allowed.
    try:
        parsed = validate_body(TransferBody, {**TRANSFER, "memo": memo})
    except ValidationFailed as error:
        assert error.details["fields"]["memo"].startswith("must not contain")
        assert _refused_by_the_rule(memo, multiline=True)
    else:
        assert not _refused_by_the_rule(memo, multiline=True)
        # Stored as shown: composed, with plain spaces and plain line breaks.
        assert parsed.memo is not None and unicodedata.is_normalized("NFC", parsed.memo)
        assert "\u00a0" not in parsed.memo and "\r" not in parsed.memo
    try:
        validate_body(TransferBody, {**TRANSFER, "from_wallet": wallet})
    except ValidationFailed as error:
        if _refused_by_the_rule(wallet, multiline=False):
            assert error.details["fields"]["from_wallet"].startswith("must not contain")
    else:
        assert not _refused_by_the_rule(wallet, multiline=False)


@pytest.mark.parametrize("text", ["wal\x00a", "wal\x1fa", "wal\x7fa", "wal\x85a", "wal\ud800"])
def test_control_characters_in_ascii_and_beyond_are_refused(text: str) -> None:
    for body in ({**TRANSFER, "from_wallet": text}, {**TRANSFER, "memo": text}):
        with pytest.raises(ValidationFailed, match="control characters"):
            validate_body(TransferBody, body)
    assert validate_body(TransferBody, {**TRANSFER, "memo": "a\nb\tc d é"}).memo == "a\nb\tc d é"


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _outcome(parse: Any, raw: bytes) -> str:
    try:
        return repr(parse(raw))
    except (ValueError, RecursionError) as error:
        return type(error).__name__


json_documents = st.one_of(
    st.binary(max_size=40),
    json_values.map(lambda value: json.dumps(value).encode()),
    # Flat objects like every request body, with the values where parsers part ways.
    st.dictionaries(
        st.text(max_size=5),
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30])
        | st.floats()
        | st.text(max_size=8),
        max_size=5,
    ).flatmap(
        lambda value: st.sampled_from(
            [json.dumps(value).encode(), json.dumps(value, ensure_ascii=False).encode()]
        )
    ),
    st.builds(
        lambda value, encoding, bom: (
            (b"\xef\xbb\xbf" if bom else b"")
            + json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass")
        ),
        json_values,
        st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-32-le"]),
        st.booleans(),
    ),
    st.sampled_from([b"NaN", b'{"a": Infinity}', b"1e400", b'"\\ud800"', b"[" * 5000]),
)


@given(raw=json_documents)
def test_body_decoding_is_json_loads(raw: bytes) -> None:
    assert _outcome(_loads, raw) == _outcome(
        lambda data: json.loads(data, parse_constant=_refuse), raw
    )


class _Kind(enum.StrEnum):
    P2P = "p2p"


plain_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**65),
    st.text(),
    st.sampled_from(
        ["\ud800", "a\udfffb", "\x00\x1f\x7f\u2028", _Kind.P2P, 1e-7, 0.5, math.nan, math.inf]
    ),
)
response_bodies = st.one_of(
    st.dictionaries(st.text(max_size=8), plain_values, max_size=6),
    st.dictionaries(st.integers() | st.booleans(), plain_values, max_size=3),
    json_values,
    st.lists(plain_values, max_size=3),
)


@given(data=response_bodies, headers=st.sampled_from([None, {"Retry-After": "2"}]))
def test_json_responses_are_what_aiohttp_writes_with_dumps(
    data: Any, headers: dict[str, str] | None
) -> None:
    def outcome(make: Any) -> Any:
        try:
            response = make(data, status=201, headers=headers)
        except (ValueError, TypeError) as error:
            return type(error).__name__
        return response.status, list(response.headers.items()), response.body

    assert outcome(json_response) == outcome(
        lambda value, **kwargs: web.json_response(value, dumps=dumps, **kwargs)
    )


def test_email_is_lower_cased_and_password_length_comes_from_settings() -> None:
    body = {
        "email": "Ada@Example.TEST",
        "password": "x" * 8,
        "name": " Ada ",
        "bank_account": "DE1",
    }
    parsed = validate_body(SignupBody, body, context={"password_min_length": 8})
    assert (parsed.email, parsed.name) == ("ada@example.test", "Ada")
    with pytest.raises(ValidationFailed) as caught:
        validate_body(SignupBody, body, context={"password_min_length": 12})
    assert set(caught.value.details["fields"]) == {"password"}


def test_query_parameters() -> None:
    assert parse_limit(None) == 50
    assert parse_limit("200") == 200
    assert parse_cursor("") is None
    assert parse_cursor("s42") == "s42"
    with pytest.raises(ValidationFailed):
        parse_limit("0")
    with pytest.raises(ValidationFailed):
        parse_cursor("s 42")
    with pytest.raises(NotFound):
        parse_path_id("wal\x00", "wallet")


def test_request_hash_ignores_key_order_and_whitespace_but_not_values() -> None:
    one = request_hash("post", "/api/v1/transfers", {"a": 1, "b": [1, 2]})
    assert one == request_hash("POST", "/api/v1/transfers", {"b": [1, 2], "a": 1})
    assert one != request_hash("POST", "/api/v1/transfers", {"a": 2, "b": [1, 2]})
    assert one != request_hash("POST", "/api/v1/wallets", {"a": 1, "b": [1, 2]})
    assert len(one) == 64
    # Lone surrogates are valid JSON escapes; they must not crash the fingerprint.
    assert request_hash("POST", "/x", {"memo": "\ud800"})


def test_tokens_round_trip_and_expire() -> None:
    token = issue_access_token(SETTINGS, "usr_1")
    assert token.expires_in == SETTINGS.jwt.ttl_seconds
    assert decode_access_token(SETTINGS, token.token).user_id == "usr_1"
    expired = issue_access_token(SETTINGS, "usr_1", now=int(time.time()) - 7200)
    with pytest.raises(Unauthorized, match="expired"):
        decode_access_token(SETTINGS, expired.token)
    other = Settings(
        _env_file=None,  # type: ignore[call-arg]
        jwt_secret=SecretStr("another-secret-0123456789-abcdefghijklmnopqrstuvwxyz"),
    )
    with pytest.raises(Unauthorized):
        decode_access_token(other, token.token)
