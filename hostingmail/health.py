"""/healthz for load balancers: 200 while the panel can reach its database, 503 otherwise."""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        log.warning("health check: database unreachable", exc_info=True)
        return False


@never_cache
@require_safe
def healthz(request):
    if database_ok():
        return JsonResponse({"status": "ok"})
    return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
