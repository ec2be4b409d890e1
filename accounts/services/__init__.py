"""Every state change of the panel, one module per subject; callers import from the subject module.

The audit log's writer is re-exported because relay's services write audit entries too.
"""

from accounts.services.audit_log import audit, snapshot

__all__ = ["audit", "snapshot"]
