"""The API's docs page: Swagger UI from the sidecar's static files (no CDN), within the panel's CSP.

The page is drf-spectacular's split view (its init script is a separate request, not inline) with a template
that has no inline style; Swagger UI draws its icons from data: URIs, which this page alone allows as images.
"""

from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from hostingmail.api.views.common import InEnglish


class SchemaView(InEnglish, SpectacularAPIView):
    # The schema and the docs are public: they describe the API, not anyone's data.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []


@method_decorator(csp_update({"img-src": ["data:"]}), name="dispatch")
class DocsView(SpectacularSwaggerSplitView):
    template_name = "api/docs.html"
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
