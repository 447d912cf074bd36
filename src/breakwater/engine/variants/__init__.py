"""Canary and A/B variants: sticky assignment of a route's requests to its arms (docs/variants.md)."""
