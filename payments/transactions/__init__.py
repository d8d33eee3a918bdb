"""Account-to-account transactions, the allowlist they need, and account
certifications (``/allowlist``, ``/certified``, ``/transactions``)."""
