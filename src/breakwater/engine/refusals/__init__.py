"""The refusal detector: which answers refused the request (docs/variants.md)."""
