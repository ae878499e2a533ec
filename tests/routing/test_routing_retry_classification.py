"""What each upstream failure means: retried on another channel or not, and whose fault it is."""

from __future__ import annotations

import pytest

from sluicegate.routing import CONNECT_FAILED, FIRST_BYTE_TIMED_OUT, STREAM_CUT, classify
from sluicegate.routing.retry import (
    AUTH_ERROR,
    BALANCE_ERROR,
    BREAKER_KINDS,
    CLIENT_ERROR,
    RATE_LIMITED,
    SERVER_ERROR,
    SUCCESS,
)

# status -> (kind, retried on another channel?)
TABLE = {
    400: (CLIENT_ERROR, False),
    401: (AUTH_ERROR, True),
    402: (BALANCE_ERROR, True),
    403: (AUTH_ERROR, True),
    404: (CLIENT_ERROR, False),
    405: (CLIENT_ERROR, False),
    408: (SERVER_ERROR, True),
    409: (CLIENT_ERROR, False),
    413: (CLIENT_ERROR, False),
    422: (CLIENT_ERROR, False),
    429: (RATE_LIMITED, True),
    500: (SERVER_ERROR, True),
    501: (SERVER_ERROR, True),
    502: (SERVER_ERROR, True),
    503: (SERVER_ERROR, True),
    504: (SERVER_ERROR, True),
}


@pytest.mark.parametrize("status", sorted(TABLE))
def test_each_status_has_a_kind_and_a_retry_verdict(status: int) -> None:
    kind, retryable = TABLE[status]
    outcome = classify(status, b'{"error":{"message":"x"}}', {})
    assert (outcome.kind, outcome.retryable, outcome.status) == (kind, retryable, status)


def test_success_is_not_a_failure() -> None:
    outcome = classify(200)
    assert outcome.kind == SUCCESS and not outcome.retryable


def test_connection_errors_and_first_byte_timeouts_are_retried_and_count_against_health() -> None:
    for outcome in (CONNECT_FAILED, FIRST_BYTE_TIMED_OUT):
        assert outcome.retryable
        assert outcome.kind in BREAKER_KINDS


def test_a_stream_cut_after_bytes_reached_the_client_is_never_retried() -> None:
    assert not STREAM_CUT.retryable
    assert STREAM_CUT.kind in BREAKER_KINDS


def test_client_faults_do_not_count_against_the_channel() -> None:
    assert classify(400).kind not in BREAKER_KINDS


def test_rate_limits_are_not_ill_health() -> None:
    assert classify(429).kind not in BREAKER_KINDS


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, b'{"error":{"code":"insufficient_quota","message":"You exceeded your current quota"}}'),
        (402, b'{"error":{"message":"Insufficient Balance"}}'),
        (400, b'{"type":"error","error":{"message":"Your credit balance is too low to access the API"}}'),
        (
            400,
            b'{"code":"Arrearage","message":"Access denied, please make sure your account is in good standing."}',
        ),
    ],
)
def test_an_exhausted_balance_is_a_balance_error_whatever_the_status(status: int, body: bytes) -> None:
    outcome = classify(status, body)
    assert outcome.kind == BALANCE_ERROR and outcome.retryable


def test_the_balance_hint_is_a_fixed_phrase_never_body_text() -> None:
    outcome = classify(402, b'{"error":{"message":"Insufficient Balance for key sk-secret-123"}}')
    assert outcome.hint == "insufficient balance"
    assert "sk-secret" not in outcome.label


def test_a_429_carries_its_retry_after() -> None:
    assert classify(429, None, {"Retry-After": "7"}).retry_after == 7.0


def test_a_503_carries_its_retry_after() -> None:
    assert classify(503, None, {"retry-after": "3"}).retry_after == 3.0


def test_retry_after_ms_is_preferred_for_its_precision() -> None:
    outcome = classify(429, None, {"retry-after-ms": "250", "retry-after": "1"})
    assert outcome.retry_after == pytest.approx(0.25)


def test_an_unexpected_status_class_is_a_bad_response_worth_another_channel() -> None:
    outcome = classify(302)
    assert outcome.retryable and outcome.kind in BREAKER_KINDS


def test_googles_invalid_api_key_400_is_a_credential_error() -> None:
    body = (
        b'{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", '
        b'"status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}'
    )
    assert classify(400, body).kind == AUTH_ERROR


def test_an_ordinary_400_stays_the_clients_fault() -> None:
    assert classify(400, b'{"error": {"message": "contents is not specified"}}').kind == CLIENT_ERROR
