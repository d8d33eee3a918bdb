"""Ledger account names for spend (written only through ``payments.ledger``)."""


def mandate_account(mandate_id: int) -> str:
    """The budget of a usage mandate."""
    return f"mandate:{mandate_id}"


def merchant_account(merchant_id: int) -> str:
    """What merchants were paid from mandates."""
    return f"merchant:{merchant_id}"
