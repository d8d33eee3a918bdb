from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination as DRFCursorPagination


class CursorPagination(DRFCursorPagination):
    """``?limit=`` (default 50, max 100) and an opaque ``?cursor=``.

    Ordered newest first with the primary key as a tie-breaker, so the cursor
    is stable even when many rows share a timestamp.

    Invalid input is a 400 in the error shape, never silently ignored: a
    ``limit`` that is not a whole number of at least 1 (above 100 counts as
    100), or a ``cursor`` this API did not hand out (DRF answers 404 there).
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = ("-created_at", "-id")

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # Digits only: int() would also take " 5", "+5", "1_0" and non-ASCII digits.
        size = int(raw) if raw.isascii() and raw.isdigit() else 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: ["A whole number of at least 1 is required."]})
        return min(size, self.max_page_size)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (f"Results per page: {self.page_size} by default, "
                                            f"at most {self.max_page_size} (a larger value counts as {self.max_page_size}).")
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "The `next` or `previous` link's cursor; anything else is a 400."
        return parameters
