"""Errors a request can be answered with, and pydantic's validation errors turned into messages
that name the element and the field.

`RequestError` is what any layer raises to answer a 4xx (a body too large, undecodable, an event id
reused with other content); the HTTP middleware (kernel/http.py) turns it into the JSON error shape,
so handlers and services need not know about responses.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class RequestError(Exception):
    """A client error: `status` (4xx), a message saying what is wrong and where, extra fields."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


def _where(loc: tuple[Any, ...]) -> tuple[int | None, str | None]:
    index = loc[0] if loc and isinstance(loc[0], int) else None
    rest = loc[1:] if index is not None else loc
    field = ".".join(str(part) for part in rest) or None
    return index, field


def describe(error: ValidationError, max_details: int = 20, index_offset: int = 0) -> dict[str, Any]:
    """A 400 body: one readable `error` line plus structured `details`. `index_offset` is added to
    element indexes (for a batch validated in chunks)."""
    details = []
    for item in error.errors(include_url=False)[:max_details]:
        index, field = _where(tuple(item["loc"]))
        if index is not None:
            index += index_offset
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] in ("model_type", "dict_type"):  # worded for JSON, whatever parsed it
            message = "Input should be an object"
        elif item["type"] == "json_invalid":
            message = f"body is not valid JSON ({item.get('ctx', {}).get('error', 'parse error')})"
        details.append({"index": index, "field": field, "message": message})
    first = details[0] if details else {"index": None, "field": None, "message": "invalid body"}
    where = []
    if first["index"] is not None:
        where.append(f"element {first['index']}")
    if first["field"]:
        where.append(f"field '{first['field']}'")
    line = (", ".join(where) + ": " if where else "body: ") + str(first["message"])
    if error.error_count() > 1:
        line += f" (and {error.error_count() - 1} more problem(s))"
    return {"error": line, "details": details}
