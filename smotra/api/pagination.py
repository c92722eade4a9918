"""Page pagination in the contract's shape (§7): ``{<items>: [...], "pagination": {...}}``."""

from __future__ import annotations

import math

from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)


class PagePagination(BasePagination):
    """``page`` from 1 and ``page_size`` up to 100; out-of-range values are a 400, a page past the
    end is an empty list (clients stop on ``has_next``). Views name the items key with :func:`keyed`."""

    items_key = "items"

    def paginate_queryset(self, queryset, request, view=None):
        query = PageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        self.page, self.page_size = query.validated_data["page"], query.validated_data["page_size"]
        self.total_items = queryset.count()
        start = (self.page - 1) * self.page_size
        return list(queryset[start : start + self.page_size])

    def get_paginated_response(self, data):
        total_pages = math.ceil(self.total_items / self.page_size) if self.total_items else 0
        return Response(
            {
                self.items_key: data,
                "pagination": {
                    "page": self.page,
                    "page_size": self.page_size,
                    "total_items": self.total_items,
                    "total_pages": total_pages,
                    "has_next": self.page < total_pages,
                    "has_previous": self.page > 1 and total_pages > 0,
                },
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": [self.items_key, "pagination"],
            "properties": {
                self.items_key: schema,
                "pagination": {
                    "type": "object",
                    "required": ["page", "page_size", "total_items", "total_pages", "has_next", "has_previous"],
                    "properties": {
                        "page": {"type": "integer"},
                        "page_size": {"type": "integer"},
                        "total_items": {"type": "integer"},
                        "total_pages": {"type": "integer"},
                        "has_next": {"type": "boolean"},
                        "has_previous": {"type": "boolean"},
                    },
                },
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]


_keyed: dict[str, type[PagePagination]] = {}


def keyed(items_key: str) -> type[PagePagination]:
    """The pagination class whose items list is called ``items_key`` (``agents``, ``tags``...)."""
    if items_key not in _keyed:
        _keyed[items_key] = type(f"{items_key.title()}Pagination", (PagePagination,), {"items_key": items_key})
    return _keyed[items_key]
