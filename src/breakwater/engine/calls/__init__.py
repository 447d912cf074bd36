"""One call across a route's deployments: the gateway and its policies (retry, breaker, admission, fallback, streams)."""
