"""JSON logs that carry the request id and never a secret or a person's data."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from kobatela.core.masking import mask_data, mask_text
from kobatela.core.request_context import get_request_id, get_task

# Python's warnings (a library's UserWarning…) as log records, so they leave
# as JSON lines like everything else instead of raw text on stderr.
logging.captureWarnings(True)


class RequestIdFilter(logging.Filter):
    """The request id on every record; inside a Celery task also the task's id and name
    (the request id is then the one of the request that queued the task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = get_request_id()
        task = get_task()
        if task is not None and not getattr(record, "task_id", None):
            record.task_id, record.task_name = task
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
    """The one log format of every process (web, gunicorn's own lines, worker, beat):
    one JSON object per line with ``ts``, ``level``, ``logger``, ``message``,
    ``request_id`` and whatever ``extra`` the call gave (masked by :class:`MaskingFilter`)."""

    FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"
    RENAME = {"asctime": "ts", "levelname": "level", "name": "logger"}

    def __init__(self, *args, **kwargs) -> None:
        if not args:
            kwargs.setdefault("fmt", self.FIELDS)
        kwargs.setdefault("rename_fields", dict(self.RENAME))
        super().__init__(*args, **kwargs)

    def formatException(self, ei) -> str:
        return mask_text(super().formatException(ei))
