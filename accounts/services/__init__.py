"""Every state change of the panel, one module per subject; callers import from the subject module."""
