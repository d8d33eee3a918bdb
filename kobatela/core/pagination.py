from rest_framework.pagination import CursorPagination as DRFCursorPagination


class CursorPagination(DRFCursorPagination):
    """``?limit=`` (default 50, max 100) and an opaque ``?cursor=``.

    Ordered newest first with the primary key as a tie-breaker, so the cursor
    is stable even when many rows share a timestamp.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = ("-created_at", "-id")

