"""factory_boy factories shared by every app's tests."""

import factory

from kobatela.accounts.models import User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    kind = User.Kind.COMPANY


# --- escrow helpers: built through the real services, as the API would ---------------

import uuid  # noqa: E402
from datetime import timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402

from django.utils import timezone  # noqa: E402

from kobatela.core.actor import Actor  # noqa: E402


def actor_for(user, scopes=("sender",)) -> Actor:
    return Actor(label=f"test:{user.pk}", user=user, scopes=frozenset(scopes))


def make_escrow(*, client=None, provider=None, amounts=("100.00",), currency="USD", proof_type="PHOTO",
                deadline_in=timedelta(days=30), **milestone_extra):
    from escrow.services import escrow_create

    client = client or UserFactory()
    provider = provider or UserFactory()
    milestones = [
        {"label": f"Step {i}", "amount": Decimal(a), "proof_type": proof_type, **milestone_extra}
        for i, a in enumerate(amounts, start=1)
    ]
    return escrow_create(
        actor=actor_for(client), provider_id=provider.pk, amount_total=sum(Decimal(a) for a in amounts),
        currency=currency, deadline_at=timezone.now() + deadline_in, milestones=milestones,
    )


def fund(escrow, amount=None):
    from escrow.services import escrow_deposit

    return escrow_deposit(actor=actor_for(escrow.client), escrow_id=escrow.pk,
                          amount=amount or escrow.amount_total - escrow.amount_funded,
                          idempotency_key=uuid.uuid4().hex, account_id=escrow.client_id)
