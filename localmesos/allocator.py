"""Where the allocator used to live: it is now `localmesos.master.allocator`, beside the master
that calls it, as Mesos keeps it under src/master/allocator/. Kept so that old imports work."""

from localmesos.master.allocator import (
    DEFAULT_MIN_ALLOCATABLE,
    DEFAULT_REFUSE_SECONDS,
    MAX_REFUSE_SECONDS,
    Allocator,
)

__all__ = ["DEFAULT_MIN_ALLOCATABLE", "DEFAULT_REFUSE_SECONDS", "MAX_REFUSE_SECONDS", "Allocator"]
