"""Who is acting: an API key (with its account), a staff user in the admin, or the system."""

from __future__ import annotations

from dataclasses import dataclass, field

from kobatela.accounts.permissions import effective_scopes, sees_all


@dataclass(frozen=True)
class Actor:
    label: str  # written to audit rows: "apikey:12", "staff:3", "system:beat"
    user: object | None = None
    api_key: object | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)

    @property
    def sees_all(self) -> bool:
        """support/admin read across tenants; everyone else only their own account."""
        return self.label.startswith(("staff:", "system:")) or sees_all(self.api_key)

    @staticmethod
    def label_of(actor: "Actor | str") -> str:
        """The audit label of an actor, or of a plain label such as "system:cli"."""
        return actor.label if isinstance(actor, Actor) else str(actor)

    @classmethod
    def from_request(cls, request) -> "Actor":
        api_key = request.auth
        return cls(
            label=f"apikey:{api_key.pk}",
            user=request.user,
            api_key=api_key,
            scopes=effective_scopes(api_key),
        )

    @classmethod
    def staff(cls, user) -> "Actor":
        return cls(label=f"staff:{user.pk}", user=user)

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(label=f"system:{name}")
