from __future__ import annotations

import logging

from celery import shared_task

from kobatela.audit.chain import audit_seal

logger = logging.getLogger(__name__)


@shared_task
def seal_audit_log() -> int:
    """Beat, every AUDIT_SEAL_INTERVAL_SECONDS: chain the new audit rows and checkpoint them."""
    result = audit_seal()
    if result.sealed:
        logger.info("audit rows sealed", extra={"sealed": result.sealed, "head_seq": result.head_seq})
    return result.sealed
