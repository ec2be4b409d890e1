"""/metrics for Prometheus: the relay's and workers' counters plus the queue depth read at scrape time.

With PROMETHEUS_MULTIPROC_DIR set, every relay, worker and panel process writes its counters to files there
and this view reports their sum; without it, only this process's own counters (useful for `make run`).
"""

import os

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

import relay.metrics  # noqa: F401  (registers the relay's counters in this process)
from accounts.networks import address_in, parse_networks
from relay.models import QueuedMessage

WAITING = (QueuedMessage.State.QUEUED, QueuedMessage.State.DEFERRED)


class QueueDepthCollector:
    """Messages in the queue by state, counted in the database when scraped (exact across every process),
    and the age of the oldest one still waiting to go out: the figure to alert on when delivery falls behind."""

    def collect(self):
        family = GaugeMetricFamily("hostingmail_queue_messages", "Messages in the queue by state", labels=["state"])
        counts = dict(QueuedMessage.objects.order_by().values_list("state").annotate(n=Count("id")))
        for state in QueuedMessage.State.values:
            family.add_metric([state], counts.get(state, 0))
        yield family
        oldest = QueuedMessage.objects.filter(state__in=WAITING).aggregate(at=Min("created_at"))["at"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("hostingmail_queue_oldest_waiting_seconds",
                                "Age of the oldest queued or deferred message", value=max(age, 0.0))


class _ProcessRegistry:
    """This process's default registry, as one collector of the scrape registry."""

    def collect(self):
        yield from REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    registry.register(QueueDepthCollector())
    return registry


def _allowed(request) -> bool:
    return address_in(request.META.get("REMOTE_ADDR", ""), parse_networks(settings.METRICS_ALLOWED_IPS))


@never_cache
@require_safe
def metrics(request):
    if not _allowed(request):
        return HttpResponseForbidden("Metrics are not served to this address.\n", content_type="text/plain")
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
