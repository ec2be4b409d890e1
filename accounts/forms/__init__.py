"""The panel's forms, one module per subject."""
