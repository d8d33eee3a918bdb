"""The HTTP side of proof thumbnails in the admin: a JPEG re-encoded by
:mod:`proofs.previews`, never the stored file, with headers that keep the
browser from sniffing or running anything, and long private caching keyed
on the file's SHA-256 (a proof's file never changes)."""

from __future__ import annotations

from django.http import Http404, HttpResponse

from proofs import previews
from proofs.models import Proof

__all__ = ["preview_response"]


def preview_response(*, object_id: int, size: str, if_none_match: str | None) -> HttpResponse:
    """The preview of proof ``object_id`` at ``size`` ("thumb" or "large"), or 304
    when the browser's ``If-None-Match`` already names it. A placeholder (file
    missing or unreadable) is not cached: the file may come back."""
    if size not in previews.SIZES:
        raise Http404("No such preview size.")
    row = Proof.objects.filter(pk=object_id).values("sha256", "file", "content_type").first()
    if row is None:
        raise Http404("No such proof.")
    etag = f'"{row["sha256"][:32]}-{size}"'
    if if_none_match == etag:
        response = HttpResponse(status=304)
        real = True
    else:
        jpeg, real = previews.proof_preview(sha256=row["sha256"], file_name=row["file"],
                                            content_type=row["content_type"], size=size)
        response = HttpResponse(jpeg, content_type="image/jpeg")
        response["Content-Disposition"] = f'inline; filename="proof-{object_id}-{size}.jpg"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    if real:  # the file behind a proof never changes
        response["ETag"] = etag
        response["Cache-Control"] = "private, max-age=86400"
    else:
        response["Cache-Control"] = "private, no-store"
    return response
