"""The panel's pages, one module per subject; common.py holds what they share (the role gate, tenant-scoped getters)."""
