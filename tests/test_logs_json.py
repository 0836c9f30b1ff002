"""TRANSAKT_LOG_FORMAT=json: one JSON object per record, one line each, whatever the message."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from transakt.logs import TEXT_FORMAT, JsonFormatter, TextFormatter, configure_logging

HOSTILE = "login of eve\r\n2026-01-01 INFO forged: admin logged in\x1b[2J\x85next\u2028line\x7f"


def _emit(formatter: logging.Formatter, message: str, *args: object, exc: bool = False) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"transakt.test.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        if exc:
            try:
                raise ValueError("boom\nsecond line")
            except ValueError:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_one_line_of_json_per_record_with_every_control_escaped() -> None:
    output = _emit(JsonFormatter(), "request from %s", HOSTILE)
    assert output.count("\n") == 1 and output.endswith("\n")
    line = output[:-1]
    # No character that any reader could take for a line end or a terminal command.
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", line), repr(line)
    record = json.loads(line)
    assert record["message"] == f"request from {HOSTILE}"  # escaped, not lost
    assert record["level"] == "WARNING"
    assert record["logger"].startswith("transakt.test.")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])


def test_the_same_fields_as_the_text_format() -> None:
    text = _emit(TextFormatter(TEXT_FORMAT), "paid %d", 5)
    record = json.loads(_emit(JsonFormatter(), "paid %d", 5))
    # The text line is "time level logger: message"; the object carries the same four.
    assert set(record) == {"time", "level", "logger", "message"}
    assert text.rstrip("\n").endswith(f"{record['level']} {record['logger']}: {record['message']}")


def test_an_exception_stays_inside_its_record() -> None:
    output = _emit(JsonFormatter(), "failed %s", "x", exc=True)
    assert output.count("\n") == 1
    record = json.loads(output)
    assert "ValueError: boom\nsecond line" in record["exception"]
    assert record["message"] == "failed x"


def test_configure_logging_picks_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging("INFO", "json")
        logging.getLogger("transakt.test").info("hello %s", "world")
        err = capsys.readouterr().err.strip().splitlines()
        assert json.loads(err[-1])["message"] == "hello world"
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
