"""Sample proof files for the sandbox (docs/quickstart.md). No Django needed.

    .venv/bin/python scripts/sandbox_files.py photo --lat -4.322447 --lng 15.307045 > photo.jpg
    .venv/bin/python scripts/sandbox_files.py invoice --amount 400.00 --currency USD > invoice.pdf

``photo``: what a provider's phone produces on site — EXIF capture time now
(UTC, so after the escrow was created) and GPS at ``--lat``/``--lng`` (inside
the milestone's geofence): approved on arrival.
``invoice``: a one-page PDF with a text layer (number, date, supplier, total);
invoices always wait for a reviewer's decision.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proofs.samples import geotagged_jpeg, invoice_pdf  # noqa: E402 - after the path is set

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
kinds = parser.add_subparsers(dest="kind", required=True)
photo = kinds.add_parser("photo")
photo.add_argument("--lat", type=Decimal, required=True)
photo.add_argument("--lng", type=Decimal, required=True)
invoice = kinds.add_parser("invoice")
invoice.add_argument("--amount", type=Decimal, required=True)
invoice.add_argument("--currency", required=True)
args = parser.parse_args()
now = datetime.now(timezone.utc)
if args.kind == "photo":
    # EXIF keeps whole seconds: rounded up, a photo taken in the escrow's first
    # second still reads as taken after its creation (the future tolerance is minutes).
    captured = (now + timedelta(seconds=1)).replace(microsecond=0)
    sys.stdout.buffer.write(geotagged_jpeg(args.lat, args.lng, captured))
else:
    sys.stdout.buffer.write(invoice_pdf(amount=args.amount, currency=args.currency, issued=now.date()))
