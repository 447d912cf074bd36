"""Choosing a route's branch: rules, the learned router, cascades."""
