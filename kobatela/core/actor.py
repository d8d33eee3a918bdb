"""Who is acting: an API key (with its account), a staff user in the admin, or the system.

Every layer takes an :class:`Actor` (services to scope and audit, the audit
log to label its rows), so it lives at the bottom, in ``core``, and knows no
model: an API key's actor is built by ``ApiKey.as_actor()`` in ``accounts``,
which alone knows what the scopes mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    label: str  # written to audit rows: "apikey:12", "staff:3", "system:beat"
    user: object | None = None
    api_key: object | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # Set by accounts for a support/admin key: it reads across tenants.
    reads_all_accounts: bool = False

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)

    @property
    def sees_all(self) -> bool:
        """Staff, the system and support/admin keys read across tenants; everyone else only their own account."""
        return self.reads_all_accounts or self.label.startswith(("staff:", "system:"))

    @property
    def acts_as_provider(self) -> bool:
        """A ``provider`` key: it acts on the escrows whose provider is its account."""
        return "provider" in self.scopes

    @property
    def acts_as_client(self) -> bool:
        """Anyone but a provider-only key acts on the escrows its account owns as client."""
        return "provider" not in self.scopes or "sender" in self.scopes

    @staticmethod
    def label_of(actor: "Actor | str") -> str:
        """The audit label of an actor, or of a plain label such as "system:cli"."""
        return actor.label if isinstance(actor, Actor) else str(actor)

    @classmethod
    def staff(cls, user) -> "Actor":
        return cls(label=f"staff:{user.pk}", user=user)

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(label=f"system:{name}")
