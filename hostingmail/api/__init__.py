"""The REST API (/api/v1/): a thin layer over accounts' and relay.panel's selectors and services.

An API key acts as its user: every list comes from the same `*_visible_to` selectors as the panel's pages, every
write from the same service, so the API has no permission rules of its own beyond "read-only keys do not write".
"""
