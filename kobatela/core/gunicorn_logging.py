"""gunicorn's own log lines (its error log and the access log) as the same JSON
lines as the application's, masked the same way (``gunicorn.conf.py`` sets it
as ``logger_class``).

An access line: ``{"ts", "level", "logger": "gunicorn.access", "message":
"request", "method", "path", "status", "duration_ms", "bytes", "remote_addr",
"user_agent", "request_id"}`` — the request id is the ``X-Request-ID`` the
application answered with, so the access line and the request's own lines
share it. The query string is masked like any text (``token=****``).
"""

from __future__ import annotations

import logging

from gunicorn.glogging import Logger

from kobatela.core.logging import JsonFormatter, MaskingFilter, RequestIdFilter


class JsonLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
                if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                    handler.addFilter(RequestIdFilter())
                    handler.addFilter(MaskingFilter())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        headers = dict((name.lower(), value) for name, value in (resp.headers or []))
        query = environ.get("QUERY_STRING") or ""
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        self.access_log.log(logging.INFO, "request", extra={
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO", "") + (f"?{query}" if query else ""),
            "status": int(status) if str(status).isdigit() else status,
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "bytes": getattr(resp, "sent", None),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "user_agent": environ.get("HTTP_USER_AGENT", ""),
            "request_id": headers.get("x-request-id"),
        })
