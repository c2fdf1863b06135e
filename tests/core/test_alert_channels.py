"""Alert channels over real loopback servers: an SMTP server (aiosmtpd, plain and STARTTLS with AUTH), a webhook
receiver that verifies signatures as a user's would, and a Slack stand-in.

What a user depends on: exactly the expected notices arrive (one failure, one recovery over failure → failure →
recovery), the webhook's signature verifies and a tampered body or a replay does not, transient failures are
retried and then succeed, and a channel that cannot deliver gives back a failed Delivery with one line naming the
channel, and never the Slack URL, the webhook secret or the SMTP password.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alert_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer, free_port, receiving, smtp_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from offramp.core.alerts import (
    AlertRules,
    AlertState,
    Delivery,
    DeliveryPolicy,
    EmailChannel,
    Notice,
    RunOutcome,
    SlackChannel,
    WebhookChannel,
    decide,
    make_test_notice,
    verify_signature,
)
from offramp.core.alerts.channels import NOTICE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from offramp.core.errors import ConfigError

WEBHOOK_SECRET = "whsec-0123456789abcdef-do-not-leak"
SLACK_PATH = "/services/T0001/B0002/xoxSlackTokenDoNotLeak"
# Fast retries: the tests check behaviour, not patience.
FAST = DeliveryPolicy(attempts=3, wait_initial=0.01, wait_max=0.05, total_seconds=5.0, request_seconds=2.0)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "offramp test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def plain_smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def tls_smtp(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """STARTTLS required before anything else, and AUTH (over TLS) required before MAIL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with smtp_server(tls_context=context, require_starttls=True, auth=True) as server:
        yield server


# -- notices -----------------------------------------------------------------------------------------------------


def outcome(run_id: str, status: str, **counts: Any) -> RunOutcome:
    base: dict[str, Any] = {"queried": 100, "sent": 100}
    if status == "failed":
        base = {"queried": 100, "sent": 40, "rejected": 10, "failed": 50}
    base.update(counts)
    return RunOutcome(
        workspace="sandbox",
        target="orders",
        run_id=run_id,
        status=status,
        events={"prepared": 100, "sent": base["sent"]},
        reason_counts={"invalid_email": 7, "missing_phone": 3} if status == "failed" else {},
        seconds=12.0,
        hint="wait until the vendor recovers" if status == "failed" else None,
        **base,
    )


def failure_notice() -> Notice:
    decision = decide(AlertRules(), AlertState(), outcome("run-1", "failed"))
    (notice,) = decision.notices
    return notice


def assert_clean_error(delivery: Delivery, channel: str, *secrets: str) -> str:
    assert not delivery.ok
    assert delivery.error is not None
    assert "\n" not in delivery.error
    assert f"alert channel {channel!r}" in delivery.error
    for secret in secrets:
        assert secret not in delivery.error
    return delivery.error


# -- the whole sequence ------------------------------------------------------------------------------------------


def test_failure_failure_recovery_delivers_exactly_one_failure_and_one_recovery_on_each_channel(
    plain_smtp: SmtpServer,
) -> None:
    with receiving() as hook, receiving(SLACK_PATH) as slack:
        channels = [
            WebhookChannel("ops-hook", hook.url, SecretStr(WEBHOOK_SECRET), policy=FAST),
            SlackChannel("ops-slack", SecretStr(slack.url), policy=FAST),
            EmailChannel(
                "ops-mail",
                "127.0.0.1",
                "offramp@example.com",
                ("oncall@example.com", "data@example.com"),
                port=plain_smtp.port,
                starttls=False,
                policy=FAST,
            ),  # fmt: skip
        ]
        rules, state = AlertRules(), AlertState()
        sent: list[Notice] = []
        for run in (outcome("run-1", "failed"), outcome("run-2", "failed"), outcome("run-3", "succeeded")):
            decision = decide(rules, state, run)
            state = decision.state
            for notice in decision.notices:
                sent.append(notice)
                for channel in channels:
                    assert channel.deliver(notice) == Delivery(ok=True, attempts=1)

        assert [(n.kind, n.run_id) for n in sent] == [("failure", "run-1"), ("recovery", "run-3")]

        # The webhook: the notices' JSON, each signed.
        assert hook.bodies() == [n.as_json() for n in sent]
        for request in hook.requests:
            assert verify_signature(WEBHOOK_SECRET, request.body, request.headers)
        assert [r.headers[NOTICE_ID_HEADER.lower()] for r in hook.requests] == [n.id for n in sent]

        # Slack: text and blocks, the headline first.
        messages = slack.bodies()
        assert [m["blocks"][0]["text"]["text"] for m in messages] == [
            "orchestration 'orders' failed",
            "orchestration 'orders' recovered: run run-3 succeeded",
        ]
        assert messages[0]["text"] == "[offramp] sandbox: orchestration 'orders' failed"
        assert "invalid_email (7 rows)" in messages[0]["blocks"][1]["text"]["text"]
        assert "offramp runs show run-1 -w sandbox" in messages[0]["blocks"][2]["elements"][0]["text"]

        # Email: one message per notice to both recipients, plain text and HTML.
        mails = plain_smtp.mailbox.messages
        assert [m["Subject"] for _, m in mails] == [n.subject() for n in sent]
        for envelope, message in mails:
            assert envelope.mail_from == "offramp@example.com"
            assert envelope.rcpt_tos == ["oncall@example.com", "data@example.com"]
            assert message["To"] == "oncall@example.com, data@example.com"
            assert message["Auto-Submitted"] == "auto-generated"
            assert message.get_content_type() == "multipart/alternative"
        first = mails[0][1]
        text = first.get_body(preferencelist=("plain",))
        assert text is not None
        body = text.get_content()
        assert "Run:           run-1 (failed)" in body
        assert "queried 100, sent 40, rejected 10, failed 50" in body
        assert "See the run:   offramp runs show run-1 -w sandbox" in body
        html_part = first.get_body(preferencelist=("html",))
        assert html_part is not None and "orchestration &#x27;orders&#x27; failed" in html_part.get_content()


# -- webhook -----------------------------------------------------------------------------------------------------


def test_the_webhook_signature_verifies_and_a_tampered_body_a_wrong_secret_or_a_replay_do_not() -> None:
    notice = failure_notice()
    with receiving() as hook:
        delivery = WebhookChannel("ops-hook", hook.url, SecretStr(WEBHOOK_SECRET), policy=FAST).deliver(notice)
    assert delivery.ok
    (request,) = hook.requests
    headers = request.headers
    assert headers["content-type"] == "application/json"
    timestamp = int(headers[TIMESTAMP_HEADER.lower()])
    assert abs(time.time() - timestamp) < 60
    # The documented scheme, recomputed here by hand: HMAC-SHA256(secret, timestamp + "." + body), hex.
    import hashlib
    import hmac

    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"
    assert verify_signature(WEBHOOK_SECRET, request.body, headers)
    assert verify_signature(WEBHOOK_SECRET.encode(), request.body, {k.upper(): v for k, v in headers.items()})

    tampered = request.body.replace(b'"failure"', b'"recovery"')
    assert tampered != request.body
    assert not verify_signature(WEBHOOK_SECRET, tampered, headers)
    assert not verify_signature("another-secret", request.body, headers)
    # The timestamp is signed: moving it breaks the signature, and an old one is refused (a replay).
    moved = {**headers, TIMESTAMP_HEADER.lower(): str(timestamp + 1)}
    assert not verify_signature(WEBHOOK_SECRET, request.body, moved)
    assert not verify_signature(WEBHOOK_SECRET, request.body, headers, now=timestamp + 301)
    assert verify_signature(WEBHOOK_SECRET, request.body, headers, now=timestamp + 299)
    # Missing or malformed headers.
    assert not verify_signature(WEBHOOK_SECRET, request.body, {})
    assert not verify_signature(WEBHOOK_SECRET, request.body, {**headers, TIMESTAMP_HEADER.lower(): "²"})
    assert not verify_signature(WEBHOOK_SECRET, request.body, {**headers, SIGNATURE_HEADER.lower(): "sha256=é"})
    assert sign(WEBHOOK_SECRET, request.body, timestamp) == headers[SIGNATURE_HEADER.lower()]
    assert WEBHOOK_SECRET.encode() not in request.body


def test_the_webhook_retries_500_and_429_then_succeeds_each_attempt_signed_with_one_notice_id() -> None:
    notice = failure_notice()
    with receiving() as hook:
        hook.script.extend([(500, {}, b"oops"), (429, {"Retry-After": "0"}, b""), (200, {}, b"")])
        delivery = WebhookChannel("ops-hook", hook.url, SecretStr(WEBHOOK_SECRET), policy=FAST).deliver(notice)
    assert delivery == Delivery(ok=True, attempts=3)
    assert len(hook.requests) == 3
    assert {r.headers[NOTICE_ID_HEADER.lower()] for r in hook.requests} == {notice.id}
    assert all(verify_signature(WEBHOOK_SECRET, r.body, r.headers) for r in hook.requests)


def test_a_webhook_that_keeps_failing_gives_up_after_the_policy_attempts() -> None:
    with receiving() as hook:
        hook.script.extend([(503, {}, b"")] * 5)
        delivery = WebhookChannel("ops-hook", hook.url, SecretStr(WEBHOOK_SECRET), policy=FAST).deliver(
            failure_notice()
        )
    assert delivery.attempts == 3 and len(hook.requests) == 3
    error = assert_clean_error(delivery, "ops-hook", WEBHOOK_SECRET, hook.url)
    assert "HTTP 503" in error and "gave up after 3 attempts" in error


def test_a_webhook_refusal_is_not_retried() -> None:
    with receiving() as hook:
        hook.script.append((401, {}, b'{"error": "bad signature"}'))
        delivery = WebhookChannel("ops-hook", hook.url, SecretStr(WEBHOOK_SECRET), policy=FAST).deliver(
            failure_notice()
        )
    assert delivery.attempts == 1 and len(hook.requests) == 1
    assert "the endpoint answered HTTP 401" in assert_clean_error(delivery, "ops-hook", WEBHOOK_SECRET, hook.url)


def test_a_dead_webhook_gives_a_failed_delivery_naming_the_channel_never_the_secret_or_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/alerts?token=tok-in-url"
    with caplog.at_level(logging.DEBUG):
        delivery = WebhookChannel("ops-hook", url, SecretStr(WEBHOOK_SECRET), policy=FAST).deliver(failure_notice())
    assert delivery.attempts == 3
    error = assert_clean_error(delivery, "ops-hook", WEBHOOK_SECRET, url, "tok-in-url", "127.0.0.1")
    assert error == (
        "alert channel 'ops-hook' (webhook) could not deliver the notice: connection refused (gave up after 3 attempts)"
    )
    assert "retrying (attempt 2 of 3)" in caplog.text
    assert "stamina.retry_scheduled" not in caplog.text  # offramp's own retry lines, not stamina's bare ones
    for secret in (WEBHOOK_SECRET, "tok-in-url"):
        assert secret not in caplog.text


def test_the_total_time_of_a_delivery_is_bounded_by_the_policy() -> None:
    policy = DeliveryPolicy(attempts=1000, wait_initial=0.05, wait_max=0.05, total_seconds=0.5, request_seconds=1)
    url = f"http://127.0.0.1:{free_port()}/hook"
    started = time.monotonic()
    delivery = WebhookChannel("ops-hook", url, SecretStr(WEBHOOK_SECRET), policy=policy).deliver(failure_notice())
    assert not delivery.ok and 1 < delivery.attempts < 1000
    assert time.monotonic() - started < 3


# -- Slack -------------------------------------------------------------------------------------------------------


def test_a_slack_error_names_the_channel_and_never_the_webhook_url(caplog: pytest.LogCaptureFixture) -> None:
    with receiving(SLACK_PATH) as slack, caplog.at_level(logging.DEBUG):
        slack.script.append((404, {"Content-Type": "text/plain"}, b"no_service"))
        refused = SlackChannel("ops-slack", SecretStr(slack.url), policy=FAST).deliver(failure_notice())
        url = slack.url
    assert refused.attempts == 1
    error = assert_clean_error(refused, "ops-slack", url, SLACK_PATH, "xoxSlackTokenDoNotLeak")
    assert error == (
        "alert channel 'ops-slack' (slack) could not deliver the notice: the endpoint answered HTTP 404 no_service"
    )

    dead_url = f"http://127.0.0.1:{free_port()}{SLACK_PATH}"
    with caplog.at_level(logging.DEBUG):
        dead = SlackChannel("ops-slack", SecretStr(dead_url), policy=FAST).deliver(failure_notice())
    assert dead.attempts == 3
    assert "connection refused" in assert_clean_error(dead, "ops-slack", dead_url, "xoxSlackTokenDoNotLeak")
    assert "xoxSlackTokenDoNotLeak" not in caplog.text
    assert "xoxSlackTokenDoNotLeak" not in repr(SlackChannel("ops-slack", SecretStr(dead_url)))


def test_slack_retries_a_500_then_delivers_once() -> None:
    with receiving(SLACK_PATH) as slack:
        slack.script.append((500, {}, b""))
        delivery = SlackChannel("ops-slack", SecretStr(slack.url), policy=FAST).deliver(failure_notice())
    assert delivery == Delivery(ok=True, attempts=2)
    assert len(slack.requests) == 2 and slack.requests[0].path == SLACK_PATH
    assert slack.bodies()[0] == slack.bodies()[1]


def test_slack_text_is_escaped() -> None:
    notice = Notice(kind="failure", workspace="w", target="a<b>&c", headline="orchestration 'a<b>&c' failed")
    from offramp.core.alerts.channels import slack_message

    message = slack_message(notice)
    assert message["text"] == "[offramp] w: orchestration 'a&lt;b&gt;&amp;c' failed"
    assert "<" not in message["blocks"][1]["text"]["text"]


# -- email -------------------------------------------------------------------------------------------------------


def test_email_over_starttls_with_auth_is_delivered(tls_smtp: SmtpServer, certificate: tuple[Path, Path]) -> None:
    channel = EmailChannel(
        "ops-mail", "127.0.0.1", "offramp@example.com", ("oncall@example.com",), port=tls_smtp.port,
        username=SMTP_USER, password=SecretStr(SMTP_PASSWORD), ca_file=certificate[0], policy=FAST,
    )  # fmt: skip
    notice = make_test_notice("production", "ops-mail")
    assert channel.deliver(notice) == Delivery(ok=True, attempts=1)
    assert tls_smtp.mailbox.logins == [SMTP_USER]
    ((envelope, message),) = tls_smtp.mailbox.messages
    assert envelope.rcpt_tos == ["oncall@example.com"]
    assert message["Subject"] == "[offramp] production: test notice from offramp for alert channel 'ops-mail'"
    assert message["X-Offramp-Notice-Kind"] == "test"
    assert SMTP_PASSWORD not in repr(channel)


def test_email_with_a_wrong_password_fails_once_without_the_password(
    tls_smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    channel = EmailChannel(
        "ops-mail", "127.0.0.1", "offramp@example.com", ("oncall@example.com",), port=tls_smtp.port,
        username=SMTP_USER, password=SecretStr("wrong-" + SMTP_PASSWORD), ca_file=certificate[0], policy=FAST,
    )  # fmt: skip
    delivery = channel.deliver(failure_notice())
    assert delivery.attempts == 1
    error = assert_clean_error(delivery, "ops-mail", SMTP_PASSWORD)
    assert "refused the user name or password (535)" in error
    assert tls_smtp.mailbox.messages == []


def test_email_refuses_a_certificate_it_cannot_verify(tls_smtp: SmtpServer) -> None:
    channel = EmailChannel(
        "ops-mail", "127.0.0.1", "offramp@example.com", ("oncall@example.com",), port=tls_smtp.port,
        username=SMTP_USER, password=SecretStr(SMTP_PASSWORD), policy=FAST,
    )  # fmt: skip
    delivery = channel.deliver(failure_notice())
    assert delivery.attempts == 1
    assert "TLS certificate did not verify" in assert_clean_error(delivery, "ops-mail", SMTP_PASSWORD)
    assert tls_smtp.mailbox.logins == [] and tls_smtp.mailbox.messages == []


def test_email_with_starttls_on_refuses_a_server_without_it(plain_smtp: SmtpServer) -> None:
    channel = EmailChannel(
        "ops-mail", "127.0.0.1", "offramp@example.com", ("oncall@example.com",), port=plain_smtp.port, policy=FAST
    )
    delivery = channel.deliver(failure_notice())
    assert delivery.attempts == 1
    assert "does not offer STARTTLS" in assert_clean_error(delivery, "ops-mail")
    assert plain_smtp.mailbox.messages == []


def test_email_retries_a_deferred_recipient_then_delivers_once(plain_smtp: SmtpServer) -> None:
    plain_smtp.mailbox.defer_rcpt = 1
    channel = EmailChannel(
        "ops-mail", "127.0.0.1", "offramp@example.com", ("oncall@example.com",), port=plain_smtp.port,
        starttls=False, policy=FAST,
    )  # fmt: skip
    assert channel.deliver(failure_notice()) == Delivery(ok=True, attempts=2)
    assert len(plain_smtp.mailbox.messages) == 1


def test_a_dead_smtp_server_gives_a_failed_delivery_after_retries() -> None:
    channel = EmailChannel(
        "ops-mail", "127.0.0.1", "offramp@example.com", ("oncall@example.com",), port=free_port(),
        starttls=False, policy=FAST,
    )  # fmt: skip
    delivery = channel.deliver(failure_notice())
    assert delivery.attempts == 3
    assert assert_clean_error(delivery, "ops-mail") == (
        "alert channel 'ops-mail' (email) could not deliver the notice: connection refused (gave up after 3 attempts)"
    )


# -- settings ----------------------------------------------------------------------------------------------------


def test_channel_settings_are_checked_and_errors_never_quote_a_secret_url() -> None:
    with pytest.raises(ConfigError, match="'ops-slack': the Slack webhook URL must be an https:// URL") as caught:
        SlackChannel("ops-slack", SecretStr("http://hooks.example.com" + SLACK_PATH))
    assert "xoxSlackTokenDoNotLeak" not in str(caught.value)
    with pytest.raises(ConfigError, match="'ops-hook': the webhook URL must be an https:// URL"):
        WebhookChannel("ops-hook", "http://example.com/hook", SecretStr(WEBHOOK_SECRET))
    with pytest.raises(ConfigError, match="signing secret is empty"):
        WebhookChannel("ops-hook", "https://example.com/hook", SecretStr(""))
    WebhookChannel("ops-hook", "https://example.com/hook", SecretStr(WEBHOOK_SECRET))  # fine
    with pytest.raises(ConfigError, match="a password is sent only over STARTTLS"):
        EmailChannel(
            "ops-mail", "smtp.example.com", "offramp@example.com", ("a@example.com",), starttls=False,
            username="u", password=SecretStr(SMTP_PASSWORD),
        )  # fmt: skip
    with pytest.raises(
        ConfigError, match="port 0 is not a port .*; recipient 'not an address' is not an email address"
    ):
        EmailChannel("ops-mail", "smtp.example.com", "offramp@example.com", ("not an address",), port=0)
    with pytest.raises(ConfigError, match="attempts is at least 1"):
        DeliveryPolicy(attempts=0)
