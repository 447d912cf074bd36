"""The two backends of the engine's ``Counters`` port (``engine/counters.py`` defines the checks).

``MemoryCounters`` holds one process's counts; ``RedisCounters`` shares them, exactly, across
replicas. Both pass the same conformance suite (``tests/infra/counters/test_conformance.py``).
"""

from breakwater.infra.counters.memory import MemoryCounters
from breakwater.infra.counters.redis import RedisCounters

__all__ = ["MemoryCounters", "RedisCounters"]
