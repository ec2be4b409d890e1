"""Page-number pagination (?page=, ?page_size= up to 200), counting at most the panel's cap of rows."""

from rest_framework.pagination import PageNumberPagination

from accounts.views.common import CappedPaginator


class Pagination(PageNumberPagination):
    django_paginator_class = CappedPaginator
    page_size_query_param = "page_size"
    max_page_size = 200
