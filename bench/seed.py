"""Seed the deposit benchmark: N DRAFT escrows owned by the bench sender.

Usage: python bench/seed.py <client email> <count>
Prints two lines: "CLIENT <account id>" and "ESCROWS <id> <id> ...".

Each escrow goes through the real service (escrow_create: one milestone,
an event and an audit row), with a total of 1,000,000,000.00 so that
1.00 deposits never reach it (the escrow stays DRAFT and keeps taking
deposits for the whole run).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kobatela.settings")

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402

from escrow import services  # noqa: E402
from kobatela.core.actor import Actor  # noqa: E402
from kobatela.accounts.models import User  # noqa: E402
from kobatela.accounts.services import user_create  # noqa: E402

TOTAL = Decimal("1000000000.00")


def main() -> None:
    email, count = sys.argv[1], int(sys.argv[2])
    client = User.objects.get(email=email.strip().lower())
    provider = User.objects.filter(email="bench-provider@example.com").first() or user_create(
        actor="system:bench", email="bench-provider@example.com", full_name="Bench Provider", kind=User.Kind.COMPANY
    )
    actor = Actor(label="system:bench-seed", user=client)
    ids = []
    for _ in range(count):
        escrow = services.escrow_create(
            actor=actor, provider_id=provider.pk, amount_total=TOTAL, currency="USD",
            deadline_at=timezone.now() + timedelta(days=365),
            milestones=[{"label": "Delivery", "amount": TOTAL, "proof_type": "PHOTO"}],
        )
        ids.append(escrow.pk)
    print(f"CLIENT {client.pk}")
    print("ESCROWS " + " ".join(map(str, ids)))


if __name__ == "__main__":
    main()
