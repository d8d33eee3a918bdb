"""The proofs back office, one module a job (see ``proof_admin``). Imported by
the admin's autodiscovery: importing ``proof_admin`` registers ``ProofAdmin``."""

from proofs.admin import proof_admin  # noqa: F401  (registers ProofAdmin on admin.site)
