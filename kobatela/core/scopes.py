"""The scopes an API key may hold: the vocabulary every endpoint's ``required_scopes`` is written in.

It sits in ``core`` because every layer's API declares them; what a key may
do with them is ``kobatela.accounts``' (``ApiKey.effective_scopes``,
``permissions.HasScope``).
"""

from django.db import models


class Scope(models.TextChoices):
    SENDER = "sender"
    SUPPORT = "support"
    ADMIN = "admin"
    GOV = "gov"
    ONG = "ong"
    # The provider of an escrow (its ``provider_id`` user): sees and acts on those escrows only.
    PROVIDER = "provider"


# Keys with these scopes read across tenants (support staff and operators).
SEE_ALL_SCOPES = frozenset({Scope.SUPPORT, Scope.ADMIN})
