"""JSON logs that carry the request id and never a secret or a person's data."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from kobatela.core.masking import mask_data, mask_text
from kobatela.core.request_context import get_request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = get_request_id()
        return True


class MaskingFilter(logging.Filter):
    """Mask API keys, secrets, IBANs, emails and phone numbers in every record.

    The message is rendered once with its arguments and masked as text;
    ``extra`` values are masked by key and content.
    """

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)))

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage())
        record.args = ()
        for name, value in list(vars(record).items()):
            if name not in self._standard and name != "request_id":
                setattr(record, name, mask_data({name: value})[name])
        return True


class JsonFormatter(_JsonFormatter):
    def formatException(self, ei) -> str:
        return mask_text(super().formatException(ei))
