"""Pure product rules: no I/O, no AWS, no framework (guarded by import-linter)."""
