"""Limits and budgets: counter checks, the quota with reserve-then-settle, their vocabulary."""
