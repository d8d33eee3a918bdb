"""Webhook signing/verification, checked against the reference libraries.

``standardwebhooks`` and ``stripe`` produce and check signatures, so these tests
prove interop both ways. No database, no Django settings needed.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
import stripe
import time_machine
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from kobatela.core.errors import BadRequest, DomainError, ServiceUnavailable, Unauthenticated
from webhooks.signing import (
    fingerprint,
    secret_bytes,
    sign,
    signature_headers,
    verify,
    verify_stripe,
)

NOW = 1_750_000_000
TOLERANCE = 300
KEY = b"current-key-32-bytes-of-entropy!"
NEXT_KEY = b"next-key-also-32-bytes-long-ok!!"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NEXT_SECRET = "whsec_" + base64.b64encode(NEXT_KEY).decode()
PLAIN_SECRET = "plain-shared-secret-not-base64"
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = json.dumps({"type": "payment.succeeded", "data": {"amount": 1000, "note": "café"}}).encode()

STRIPE_SECRET = "whsec_stripe_test_secret_0123456789"
STRIPE_BODY = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}).encode()


def _lib_headers(
    secret: str | bytes, *, msg_id: str = MSG_ID, timestamp: int = NOW, body: bytes = BODY
) -> dict[str, str]:
    """Headers signed by the reference Standard Webhooks library."""
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=timezone.utc), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def _verify(headers, *, body: bytes = BODY, secrets=(SECRET,), now: int = NOW) -> str:
    return verify(headers=headers, body=body, secrets=list(secrets), tolerance_seconds=TOLERANCE, now=now)


def _stripe_header(secret: str = STRIPE_SECRET, *, timestamp: int = NOW, body: bytes = STRIPE_BODY) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)


def _v1(header: str) -> str:
    return header.split(",", 1)[1]  # "v1=<hex>"


# --------------------------------------------------------------------------- #
# Standard Webhooks: inbound (library signs, we verify)
# --------------------------------------------------------------------------- #


def test_valid_signature_from_reference_library_returns_id():
    assert _verify(_lib_headers(SECRET)) == MSG_ID


def test_header_names_are_case_insensitive_in_a_plain_dict():
    headers = {k.upper(): v for k, v in _lib_headers(SECRET).items()}
    assert _verify(headers) == MSG_ID
    headers = {k.title(): v for k, v in _lib_headers(SECRET).items()}
    assert _verify(headers) == MSG_ID


def test_django_request_headers_are_accepted():
    from django.http.request import HttpHeaders  # importable without settings

    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in _lib_headers(SECRET).items()}
    assert _verify(HttpHeaders(meta)) == MSG_ID


def test_tampered_body_is_refused():
    headers = _lib_headers(SECRET)
    with pytest.raises(Unauthenticated) as exc:
        _verify(headers, body=BODY.replace(b"1000", b"9000"))
    assert exc.value.code == "webhook_signature_invalid"
    assert exc.value.status == 401


def test_tampered_id_or_timestamp_is_refused():
    headers = _lib_headers(SECRET)
    with pytest.raises(Unauthenticated):
        _verify({**headers, "webhook-id": "msg_other"})
    with pytest.raises(Unauthenticated):
        _verify({**headers, "webhook-timestamp": str(NOW + 1)})


def test_wrong_secret_is_refused():
    other = "whsec_" + base64.b64encode(b"someone-else's-key-entirely!!!!").decode()
    with pytest.raises(Unauthenticated) as exc:
        _verify(_lib_headers(other))
    assert exc.value.code == "webhook_signature_invalid"


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
@pytest.mark.parametrize("how", ["absent", "empty", "blank"])
def test_each_missing_header_is_a_400(name, how):
    headers = _lib_headers(SECRET)
    if how == "absent":
        del headers[name]
    else:
        headers[name] = "" if how == "empty" else "   "
    with pytest.raises(BadRequest) as exc:
        _verify(headers)
    assert exc.value.code == "webhook_headers_missing"
    assert exc.value.status == 400
    assert exc.value.details == {"missing": [name]}


@pytest.mark.parametrize("offset", [-301, 301, -3600, 10**6])
def test_timestamp_outside_tolerance_is_refused(offset):
    headers = _lib_headers(SECRET, timestamp=NOW + offset)  # correctly signed, but stale/future
    with pytest.raises(BadRequest) as exc:
        _verify(headers)
    assert exc.value.code == "webhook_timestamp_invalid"
    assert exc.value.status == 400


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_timestamp_inside_tolerance_is_accepted(offset):
    assert _verify(_lib_headers(SECRET, timestamp=NOW + offset)) == MSG_ID


@pytest.mark.parametrize("offset, accepted", [(-299, True), (299, True), (-301, False), (301, False)])
def test_tolerance_uses_the_clock_when_now_is_omitted(offset, accepted):
    headers = _lib_headers(SECRET, timestamp=NOW + offset)
    with time_machine.travel(NOW, tick=False):
        if accepted:
            assert verify(headers=headers, body=BODY, secrets=[SECRET], tolerance_seconds=TOLERANCE) == MSG_ID
        else:
            with pytest.raises(BadRequest, match="webhook_timestamp_invalid"):
                verify(headers=headers, body=BODY, secrets=[SECRET], tolerance_seconds=TOLERANCE)


@pytest.mark.parametrize(
    "value", ["abc", f"{NOW}.5", "1.75e9", f"+{NOW}", f"{NOW}x", "0x10", "١٧٥٠٠٠٠٠٠٠", "1_750_000_000"]
)
def test_non_integer_timestamp_is_a_400(value):
    headers = {**_lib_headers(SECRET), "webhook-timestamp": value}
    with pytest.raises(BadRequest) as exc:
        _verify(headers)
    assert exc.value.code == "webhook_timestamp_invalid"


def test_next_secret_is_accepted_during_rotation():
    headers = _lib_headers(NEXT_SECRET)
    assert _verify(headers, secrets=[SECRET, NEXT_SECRET]) == MSG_ID
    assert _verify(headers, secrets=[None, "", NEXT_SECRET]) == MSG_ID
    with pytest.raises(Unauthenticated):
        _verify(headers, secrets=[SECRET])


def test_several_signatures_in_one_header_one_bad_one_good():
    good = _lib_headers(SECRET)["webhook-signature"]
    bad = _lib_headers(NEXT_SECRET)["webhook-signature"]
    for signature in (f"{bad} {good}", f"{good} {bad}"):
        headers = {**_lib_headers(SECRET), "webhook-signature": signature}
        assert _verify(headers) == MSG_ID


def test_other_versions_and_malformed_entries_are_ignored():
    good_b64 = _lib_headers(SECRET)["webhook-signature"].split(",", 1)[1]
    base = _lib_headers(SECRET)
    # A correct HMAC under another version prefix does not count.
    for signature in (f"v2,{good_b64}", f"v1a,{good_b64}", good_b64, "v1,", "v1,%%%not-base64%%%", "v1"):
        with pytest.raises(Unauthenticated):
            _verify({**base, "webhook-signature": signature})
    # ...but garbage next to a good v1 entry is harmless.
    headers = {**base, "webhook-signature": f"v1,%%% v2,{good_b64} junk v1,{good_b64}"}
    assert _verify(headers) == MSG_ID


def test_plain_secret_is_used_as_utf8_bytes():
    assert secret_bytes(PLAIN_SECRET) == PLAIN_SECRET.encode()
    headers = _lib_headers(PLAIN_SECRET.encode())  # library given raw bytes as key
    assert _verify(headers, secrets=[PLAIN_SECRET]) == MSG_ID
    assert sign(secret=PLAIN_SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY) == headers["webhook-signature"]


def test_whsec_secret_is_base64_decoded():
    assert secret_bytes(SECRET) == KEY
    unpadded = "whsec_" + base64.b64encode(b"17 bytes of key!!").decode().rstrip("=")
    assert secret_bytes(unpadded) == b"17 bytes of key!!"
    # The whsec_ secret and its base64 text used as a plain secret are different keys.
    as_plain = SECRET.removeprefix("whsec_")
    with pytest.raises(Unauthenticated):
        _verify(_lib_headers(SECRET), secrets=[as_plain])


@pytest.mark.parametrize("bad", ["whsec_", "whsec_***", "whsec_Q", ""])
def test_malformed_or_empty_secret_raises_value_error_without_echoing_it(bad):
    with pytest.raises(ValueError) as exc:
        secret_bytes(bad)
    if bad.removeprefix("whsec_"):
        assert bad.removeprefix("whsec_") not in str(exc.value)


def test_malformed_secret_is_skipped_when_verifying():
    headers = _lib_headers(SECRET)
    assert _verify(headers, secrets=["whsec_***", SECRET]) == MSG_ID
    with pytest.raises(ServiceUnavailable, match="webhook_secret_missing"):
        _verify(headers, secrets=["whsec_***"])


@pytest.mark.parametrize("secrets", [[], [None], [""], [None, "  "]])
def test_no_secret_is_a_503(secrets):
    with pytest.raises(ServiceUnavailable) as exc:
        _verify(_lib_headers(SECRET), secrets=secrets)
    assert exc.value.code == "webhook_secret_missing"
    assert exc.value.status == 503


def test_no_secret_wins_over_missing_headers():
    with pytest.raises(ServiceUnavailable):
        _verify({}, secrets=[None])


def test_body_must_be_raw_bytes():
    headers = _lib_headers(SECRET)
    assert _verify(headers, body=bytearray(BODY)) == MSG_ID
    with pytest.raises(TypeError):
        _verify(headers, body=BODY.decode())


# --------------------------------------------------------------------------- #
# Standard Webhooks: outbound (we sign, library verifies)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("secret", [SECRET, PLAIN_SECRET])
def test_sign_matches_reference_library(secret):
    lib_secret = secret if secret.startswith("whsec_") else secret.encode()
    expected = _lib_headers(lib_secret)["webhook-signature"]
    assert sign(secret=secret, msg_id=MSG_ID, timestamp=NOW, body=BODY) == expected


def test_signature_headers_verify_with_reference_library_for_each_secret():
    headers = signature_headers(secrets=[SECRET, NEXT_SECRET], msg_id=MSG_ID, timestamp=NOW, body=BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MSG_ID
    assert headers["webhook-timestamp"] == str(NOW)
    entries = headers["webhook-signature"].split(" ")
    assert entries == [
        sign(secret=SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY),
        sign(secret=NEXT_SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY),
    ]
    with time_machine.travel(NOW + 10, tick=False):
        # An integrator holding only the old, or only the new, secret accepts it.
        for secret in (SECRET, NEXT_SECRET):
            assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + base64.b64encode(b"an unrelated key").decode()).verify(BODY, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(BODY + b" ", headers)
    # And our own verifier round-trips.
    assert _verify(headers, secrets=[NEXT_SECRET], now=NOW + 10) == MSG_ID


def test_signature_headers_without_secret_is_a_503():
    with pytest.raises(ServiceUnavailable, match="webhook_secret_missing"):
        signature_headers(secrets=["", None], msg_id=MSG_ID, timestamp=NOW, body=BODY)


# --------------------------------------------------------------------------- #
# Stripe
# --------------------------------------------------------------------------- #


def test_stripe_valid_signature_returns_timestamp():
    header = _stripe_header()
    assert verify_stripe(header=header, body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW) == NOW
    with time_machine.travel(NOW, tick=False):
        assert verify_stripe(header=header, body=STRIPE_BODY, secret=STRIPE_SECRET) == NOW
        # The header we accept is one the Stripe library accepts too.
        event = stripe.Webhook.construct_event(STRIPE_BODY, header, STRIPE_SECRET)
        assert event.id == "evt_1"


@pytest.mark.parametrize(
    "case",
    ["valid", "tampered_body", "wrong_secret", "stale", "v0_only", "bad_then_good", "no_v1"],
)
def test_stripe_decision_agrees_with_stripe_library(case):
    body, header = STRIPE_BODY, _stripe_header()
    if case == "tampered_body":
        body = STRIPE_BODY.replace(b"evt_1", b"evt_2")
    elif case == "wrong_secret":
        header = _stripe_header("whsec_not_the_right_one")
    elif case == "stale":
        header = _stripe_header(timestamp=NOW - 301)
    elif case == "v0_only":
        header = f"t={NOW},v0={_v1(header).split('=', 1)[1]}"
    elif case == "bad_then_good":
        header = f"t={NOW},{_v1(_stripe_header('whsec_other'))},{_v1(header)}"
    elif case == "no_v1":
        header = f"t={NOW}"

    with time_machine.travel(NOW, tick=False):
        try:
            stripe.WebhookSignature.verify_header(body, header, STRIPE_SECRET, tolerance=TOLERANCE)
            stripe_accepts = True
        except stripe.SignatureVerificationError:
            stripe_accepts = False
        try:
            verify_stripe(header=header, body=body, secret=STRIPE_SECRET)
            we_accept = True
        except DomainError:
            we_accept = False
    assert we_accept == stripe_accepts == (case in ("valid", "bad_then_good"))


def test_stripe_tampered_body_and_wrong_secret_are_401():
    with pytest.raises(Unauthenticated) as exc:
        verify_stripe(header=_stripe_header(), body=STRIPE_BODY + b" ", secret=STRIPE_SECRET, now=NOW)
    assert exc.value.code == "webhook_signature_invalid"
    with pytest.raises(Unauthenticated):
        verify_stripe(header=_stripe_header(), body=STRIPE_BODY, secret=STRIPE_SECRET + "x", now=NOW)


def test_stripe_secret_is_used_verbatim_not_base64_decoded():
    b64_secret = "whsec_" + base64.b64encode(b"looks like base64").decode()
    header = _stripe_header(b64_secret)
    assert verify_stripe(header=header, body=STRIPE_BODY, secret=b64_secret, now=NOW) == NOW


@pytest.mark.parametrize("header", [None, "", "   "])
def test_stripe_missing_header_is_a_400(header):
    with pytest.raises(BadRequest) as exc:
        verify_stripe(header=header, body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW)
    assert exc.value.code == "webhook_headers_missing"


@pytest.mark.parametrize("offset, accepted", [(-301, False), (301, False), (-299, True), (299, True), (300, True)])
def test_stripe_tolerance_both_directions(offset, accepted):
    header = _stripe_header(timestamp=NOW + offset)
    if accepted:
        assert verify_stripe(header=header, body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW) == NOW + offset
    else:
        with pytest.raises(BadRequest) as exc:
            verify_stripe(header=header, body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW)
        assert exc.value.code == "webhook_timestamp_invalid"


@pytest.mark.parametrize("t_part", ["t=abc", f"t={NOW}.0", "t=", "", f"t={NOW},t={NOW}"])
def test_stripe_non_integer_or_missing_timestamp_is_a_400(t_part):
    v1 = _v1(_stripe_header())
    header = f"{t_part},{v1}" if t_part else v1
    with pytest.raises(BadRequest) as exc:
        verify_stripe(header=header, body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW)
    assert exc.value.code == "webhook_timestamp_invalid"


def test_stripe_several_v1_and_v0_entries():
    good = _v1(_stripe_header())
    bad = _v1(_stripe_header("whsec_rolled_old_secret"))
    header = f"t={NOW},{bad},{good},v0=deadbeef"
    assert verify_stripe(header=header, body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW) == NOW


@pytest.mark.parametrize("secret", [None, "", "  "])
def test_stripe_no_secret_is_a_503(secret):
    with pytest.raises(ServiceUnavailable) as exc:
        verify_stripe(header=_stripe_header(), body=STRIPE_BODY, secret=secret, now=NOW)
    assert exc.value.code == "webhook_secret_missing"
    assert exc.value.status == 503


# --------------------------------------------------------------------------- #
# Secrecy of errors, fingerprints
# --------------------------------------------------------------------------- #


def _error_text(exc: DomainError) -> str:
    return " ".join([str(exc), exc.code, exc.message, repr(exc.details), repr(exc.args)])


def test_error_messages_never_contain_secrets_or_expected_signatures():
    good = _lib_headers(SECRET)
    forbidden = [
        SECRET,
        SECRET.removeprefix("whsec_"),
        KEY.decode(),
        NEXT_SECRET.removeprefix("whsec_"),
        good["webhook-signature"].split(",", 1)[1],
        _lib_headers(NEXT_SECRET)["webhook-signature"].split(",", 1)[1],
        STRIPE_SECRET,
        _v1(_stripe_header()).split("=", 1)[1],
        BODY.decode(),
    ]
    attempts = [
        lambda: _verify(good, body=BODY + b"x", secrets=[SECRET, NEXT_SECRET]),
        lambda: _verify({**good, "webhook-signature": "v1,AAAA"}, secrets=[SECRET, NEXT_SECRET]),
        lambda: _verify({**good, "webhook-timestamp": "later"}),
        lambda: _verify(good, now=NOW + 999),
        lambda: _verify({k: v for k, v in good.items() if k != "webhook-id"}),
        lambda: _verify(good, secrets=[None]),
        lambda: verify_stripe(header=_stripe_header(), body=b"{}", secret=STRIPE_SECRET, now=NOW),
        lambda: verify_stripe(header=f"t={NOW},v1=00", body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW),
        lambda: verify_stripe(header=_stripe_header(), body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW + 999),
        lambda: verify_stripe(header=None, body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW),
        lambda: verify_stripe(header="t=x", body=STRIPE_BODY, secret=STRIPE_SECRET, now=NOW),
    ]
    for attempt in attempts:
        with pytest.raises(DomainError) as exc:
            attempt()
        text = _error_text(exc.value)
        for secret_thing in forbidden:
            assert secret_thing not in text


def test_fingerprint_is_short_stable_and_non_revealing():
    assert fingerprint(None) is None
    assert fingerprint("") is None
    fp = fingerprint(SECRET)
    assert fp is not None and len(fp) == 8 and int(fp, 16) >= 0
    assert fp == fingerprint(SECRET)
    assert fp != fingerprint(NEXT_SECRET)
    assert fp not in SECRET
    # Same key bytes, same fingerprint, whichever way the secret is written.
    assert fingerprint("whsec_" + base64.b64encode(PLAIN_SECRET.encode()).decode()) == fingerprint(PLAIN_SECRET)
    assert fingerprint("whsec_***") is not None  # malformed but configured
