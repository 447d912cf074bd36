"""Building what a configuration needs to serve, and swapping it for another: between {infra, observability} and server."""
