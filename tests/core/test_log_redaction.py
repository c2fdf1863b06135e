"""Secrets are masked in log lines whatever library wrote them."""

from __future__ import annotations

import logging

import pytest

from offramp.core.log_redaction import RedactingFilter, redact


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (
            'HTTP Request: GET http://127.0.0.1:9/open_api/v1.3/oauth2/advertiser/get/?app_id=1&secret=S3cr3t "200"',
            "S3cr3t",
        ),
        ('Request body was {"app_id": "1", "secret": "S3cr3t", "auth_code": "code-123"}', "S3cr3t"),
        ('Request body was {"app_id": "1", "secret": "x", "auth_code": "code-123"}', "code-123"),
        ("Obtained token {'access_token': 'tok-abc.def', 'refresh_token': 'rt-999'}", "tok-abc.def"),
        ("Obtained token {'access_token': 'tok-abc.def', 'refresh_token': 'rt-999'}", "rt-999"),
        ("headers {'Access-Token': 'tok-abc.def'}", "tok-abc.def"),
        ("refresh_token=rt-999&grant_type=refresh_token", "rt-999"),
        (
            'HTTP Request: POST https://hooks.slack.com/services/T0001/B0002/xoxSlackTok "HTTP/1.1 200 OK"',
            "T0001/B0002/xoxSlackTok",
        ),
    ],
)
def test_secret_values_are_masked(line, secret):
    masked = redact(line)
    assert secret not in masked
    assert "***" in masked


def test_the_filter_rewrites_records_with_arguments():
    logger = logging.getLogger("offramp.test.redaction")
    handler_filter = RedactingFilter()
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "url %s", ("http://x/?secret=abc",), None)
    assert handler_filter.filter(record)
    assert record.getMessage() == "url http://x/?secret=***"


def test_ordinary_text_is_left_alone():
    line = "sent 1000 events to event set 7300000000000000001 in 0.2 s"
    assert redact(line) == line
