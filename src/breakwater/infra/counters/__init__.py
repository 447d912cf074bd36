"""The two backends of the engine's ``Counters`` port (``engine/limits/counters.py`` defines the checks).

``MemoryCounters`` holds one process's counts; ``RedisCounters`` (in ``.redis``, imported only
where Redis is configured, so a gateway without it never loads redis-py) shares them, exactly,
across replicas. Both pass the same conformance suite (``tests/infra/counters/test_conformance.py``).
"""

from breakwater.infra.counters.memory import MemoryCounters

__all__ = ["MemoryCounters"]
