"""Evals: assertions over answers (promptfoo-compatible subset), the first part of issue 19."""
