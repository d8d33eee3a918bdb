"""The proofs back office, one module a job (see ``proof_admin``). Imported by
the admin's autodiscovery: importing ``proof_admin`` registers ``ProofAdmin``."""

from proofs.admin import disputes, proof_admin  # noqa: F401  (register DisputeAdmin and ProofAdmin on admin.site)
