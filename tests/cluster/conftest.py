"""The Galera cluster of `make cluster`: three nodes and HAProxy on loopback, started once for
the whole run (tests/cluster/galera.py) and stopped at the end, failures included."""

from __future__ import annotations

import signal
import time

import pytest

from tests.cluster.galera import Cluster


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@pytest.fixture(scope="session")
def cluster():
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the nodes, in sessions of their
    # own, are stopped too.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    cluster = Cluster()
    started = time.monotonic()
    try:
        cluster.start()
        nodes = time.monotonic() - started
        cluster.start_haproxy()
        joined = ", ".join(f"{node.name} by {node.last_transfer}" for node in cluster.nodes[1:])
        print(
            f"\n[cluster] 3 nodes Synced in {nodes:.1f} s ({joined}), haproxy routing after "
            f"{time.monotonic() - started:.1f} s (files: {cluster.root})"
        )
        yield cluster
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)
