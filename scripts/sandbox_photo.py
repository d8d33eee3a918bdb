"""Write a sample photo for the sandbox: EXIF capture time now (UTC) and GPS at --lat/--lng.

    .venv/bin/python scripts/sandbox_photo.py --lat -4.322447 --lng 15.307045 > photo.jpg

It is what a provider's phone would produce on site: a photo taken after the
escrow was created, inside the milestone's geofence, approved on arrival
(docs/quickstart.md). No Django needed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proofs.samples import geotagged_jpeg  # noqa: E402 - after the path is set

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--lat", type=Decimal, required=True)
parser.add_argument("--lng", type=Decimal, required=True)
args = parser.parse_args()
sys.stdout.buffer.write(geotagged_jpeg(args.lat, args.lng, datetime.now(timezone.utc)))
