"""The S3 path of django-storages against a real S3-compatible server on loopback (moto)."""

import socket
import subprocess
import sys
import time
from datetime import timedelta

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from proofs.models import Proof
from tests.factories import fund, make_escrow
from tests.proofs.invoice_samples import SAMPLES, render_pdf
from tests.proofs.photo_samples import geotagged_jpeg

BUCKET = "kobatela-proofs-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def s3_storage(settings, s3_server):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": s3_server, "access_key": "testing",
                        "secret_key": "testing", "region_name": "us-east-1", "default_acl": None,
                        "file_overwrite": False},
        },
    }
    return boto3.client("s3", endpoint_url=s3_server, **CREDENTIALS)


@pytest.mark.django_db
def test_photo_is_stored_in_s3_and_served_back(sender_api, s3_storage):
    from decimal import Decimal

    escrow = fund(make_escrow(client=sender_api.user, proof_type="PHOTO"))
    content = geotagged_jpeg(Decimal("1.000000"), Decimal("2.000000"), timezone.now() - timedelta(minutes=5))
    response = sender_api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "PHOTO",
                                                  "file": SimpleUploadedFile("p.jpg", content)}, format="multipart")
    assert response.status_code == 201, response.content
    proof = Proof.objects.get()
    stored = s3_storage.get_object(Bucket=BUCKET, Key=proof.file.name)["Body"].read()
    assert stored == content
    import hashlib

    assert proof.sha256 == hashlib.sha256(content).hexdigest()
    download = sender_api.get(f"/api/v1/proofs/{proof.pk}/file")
    assert b"".join(download.streaming_content) == content


@pytest.mark.django_db
def test_ocr_reads_documents_from_s3(sender_api, s3_storage, django_capture_on_commit_callbacks):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("2487.00",), currency="EUR", proof_type="INVOICE"))
    with django_capture_on_commit_callbacks(execute=True):
        response = sender_api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "INVOICE",
                                                      "file": SimpleUploadedFile("i.pdf", render_pdf(SAMPLES[0]))},
                                   format="multipart")
    proof = Proof.objects.get(pk=response.json()["id"])
    assert proof.ocr_status == "DONE" and str(proof.invoice_amount) == "2487.00"


@pytest.mark.django_db
def test_file_url_is_presigned_by_s3_and_valid_at_most_15_minutes(sender_api, s3_storage):
    import urllib.parse
    import urllib.request
    from decimal import Decimal

    escrow = fund(make_escrow(client=sender_api.user, proof_type="PHOTO"))
    content = geotagged_jpeg(Decimal("1.000000"), Decimal("2.000000"), timezone.now() - timedelta(minutes=5))
    proof_id = sender_api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "PHOTO",
                                                  "file": SimpleUploadedFile("p.jpg", content)},
                               format="multipart").json()["id"]
    body = sender_api.get(f"/api/v1/proofs/{proof_id}/file-url").json()
    query = urllib.parse.parse_qs(urllib.parse.urlparse(body["url"]).query)
    if "X-Amz-Expires" in query:  # SigV4: a lifetime in seconds
        assert 0 < int(query["X-Amz-Expires"][0]) <= 900
    else:  # SigV2: an expiry time
        assert 0 < int(query["Expires"][0]) - int(timezone.now().timestamp()) <= 900
    with urllib.request.urlopen(body["url"], timeout=10) as response:  # the S3 server on loopback
        assert response.read() == content
