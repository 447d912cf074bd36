"""Guardrails on the request path: data-loss prevention, prompt injection, output checks."""
