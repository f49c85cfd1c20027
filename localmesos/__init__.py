"""localmesos: a Mesos-compatible cluster on one machine, for the workshop and the tests.

The master and agents speak the Mesos v1 HTTP APIs and run tasks as real local processes, so
an unmodified pymesos framework runs on it as it runs on Mesos. It is the workshop's default
cluster, not a replacement for Mesos: docker-compose.yml starts the real one.
"""

from localmesos.cluster import LocalCluster

__all__ = ["LocalCluster"]
