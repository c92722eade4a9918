"""Log lines cannot be forged: control characters (C0, DEL, C1, U+2028/U+2029) in any logged value
are escaped in both formats, so one record is always exactly one line."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from smotra.logging import JsonFormatter, RequestIdFilter, TextFormatter

FAKE = "2030-01-01T00:00:00.000Z info smotra.access [-] GET /admin 200"
HOSTILE = f"/v1/x\n{FAKE}\r\x1b[31m\x7f\x85\u2028\u2029\tend"
ESCAPED = f"/v1/x\\n{FAKE}\\r\\x1b[31m\\x7f\\x85\\u2028\\u2029\\tend"
# What str.splitlines() splits on beyond \n and \r: any of these raw in a line would split it too.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def record(msg: str = "%s %s %s", args=("GET", HOSTILE, 404), exc_info=None, **extra) -> logging.LogRecord:
    entry = logging.LogRecord("smotra.access", logging.INFO, __file__, 1, msg, args, exc_info)
    for key, value in extra.items():
        setattr(entry, key, value)
    entry.request_id = "req-1"
    return entry


def test_text_format_escapes_the_message_and_every_extra():
    line = TextFormatter().format(record(path=HOSTILE, status=404, **{"odd\nkey": "v"}))

    assert len(line.splitlines()) == 1
    assert not any(char in line for char in LINE_BREAKS + "\x1b\x7f")
    assert line.count(ESCAPED) == 2  # the message and path=
    assert line.endswith(f"[req-1] GET {ESCAPED} 404 path={ESCAPED} status=404 odd\\nkey=v")


def test_text_format_keeps_ordinary_text_as_it_is():
    line = TextFormatter().format(record(args=("GET", "/v1/agents?q=caf\u00e9 \u00fc", 200), path="/v1/agents"))

    assert line.endswith("[req-1] GET /v1/agents?q=caf\u00e9 \u00fc 200 path=/v1/agents")


def test_json_format_is_one_line_and_decodes_to_the_original_values():
    line = JsonFormatter().format(record(path=HOSTILE, client="198.51.100.7\u2028x"))

    assert len(line.splitlines()) == 1
    assert not any(char in line for char in LINE_BREAKS + "\x1b\x7f")
    assert "\\u2028" in line and "\\u0085" in line and "\\u007f" in line and "\\u001b" in line
    decoded = json.loads(line)
    assert decoded["message"] == f"GET {HOSTILE} 404"
    assert decoded["path"] == HOSTILE
    assert decoded["client"] == "198.51.100.7\u2028x"


def failure() -> tuple:
    try:
        raise ValueError("bad\x1b[2J value")
    except ValueError:
        return sys.exc_info()


def test_a_text_traceback_follows_on_its_own_lines_after_an_escaped_first_line():
    lines = TextFormatter().format(record(exc_info=failure())).split("\n")

    assert lines[0].endswith(f"[req-1] GET {ESCAPED} 404")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: bad\\x1b[2J value"


def test_a_json_traceback_stays_in_its_field():
    line = JsonFormatter().format(record(exc_info=failure()))

    assert len(line.splitlines()) == 1
    assert json.loads(line)["exception"].endswith("ValueError: bad\x1b[2J value")


@pytest.fixture
def access_log():
    """``access_log(formatter)``: the lines the access logger writes through ``formatter``."""
    streams = []
    logger = logging.getLogger("smotra.access")

    def attach(formatter: logging.Formatter) -> io.StringIO:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        streams.append(handler)
        return stream

    yield attach
    for handler in streams:
        logger.removeHandler(handler)


def test_a_request_path_with_encoded_line_breaks_is_one_access_line(client, access_log):
    text, as_json = access_log(TextFormatter()), access_log(JsonFormatter())

    client.get("/v1/agent/x%0A2030-01-01T00:00:00.000Z%20info%20smotra.access%0D%1B%5B31m/heartbeat")

    [text_line] = text.getvalue().splitlines()
    [json_line] = as_json.getvalue().splitlines()
    assert "x\\n2030-01-01T00:00:00.000Z info smotra.access\\r\\x1b[31m/heartbeat" in text_line
    assert text_line.count(" info smotra.access [") == 1  # the real record only
    path = "/v1/agent/x\n2030-01-01T00:00:00.000Z info smotra.access\r\x1b[31m/heartbeat"
    assert json.loads(json_line)["path"] == path
