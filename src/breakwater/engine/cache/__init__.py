"""The answer cache: the same request on the same route answered once (docs/caching.md).

- ``key``: what identifies an answer (the request's output-affecting fields, the route's
  fingerprint, the tenant), as one hash;
- ``directives``: ``x-breakwater-cache`` and the ``breakwater_cache`` body field;
- ``entry``: an answer as stored bytes and back;
- ``replay``: a stored answer as stream events, and a streamed answer assembled to be stored;
- ``store``: the ``CacheStore`` port (``infra/cache``: memory and Redis);
- ``stage``: the pipeline stage that looks up, serves, and fills.
"""
