import io
import json
import logging

import pytest
from django.conf import settings

from kobatela.core.logging import JsonFormatter, MaskingFilter, RequestIdFilter
from kobatela.core.request_context import reset_request_id, set_request_id


@pytest.fixture
def log_stream():
    """A handler built exactly as settings.LOGGING builds the console one."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    config = settings.LOGGING["formatters"]["json"]
    handler.setFormatter(JsonFormatter(**{key: value for key, value in config.items() if key != "()"}))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("kobatela.test.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_log_lines_are_json_with_request_id(log_stream):
    logger, stream = log_stream
    token = set_request_id("req-42")
    try:
        logger.info("hello %s", "world")
    finally:
        reset_request_id(token)
    (line,) = lines(stream)
    assert line["message"] == "hello world"
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO" and line["logger"] == "kobatela.test.logging"


def test_secrets_and_personal_data_are_masked(log_stream):
    logger, stream = log_stream
    api_key = "kbt_1a2b3c4d_" + "S" * 43
    logger.warning(
        "key=%s iban=%s mail=%s phone=%s",
        api_key, "FR76 3000 6000 0112 3456 7890 189", "jane.doe@example.test", "+243 812 345 678",
        extra={"authorization": f"Bearer {api_key}", "payload": {"email": "joe@example.test", "amount": "12.50"}},
    )
    text = stream.getvalue()
    for secret in [api_key, "S" * 43, "3000 6000 0112 3456 7890", "jane.doe@", "812 345 678", "joe@example.test"]:
        assert secret not in text
    (line,) = lines(stream)
    assert "kbt_1a2b3c4d_" in line["message"]  # the public prefix stays, to find the key
    assert line["payload"]["amount"] == "12.50"


def test_exceptions_are_masked(log_stream):
    logger, stream = log_stream
    try:
        raise ValueError("bad iban FR7630006000011234567890189")
    except ValueError:
        logger.exception("failed")
    assert "FR7630006000011234567890189" not in stream.getvalue()
