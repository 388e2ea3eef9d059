"""The engine tests that need Ray join the session's real cluster (tests/conftest.py:
a head and a worker node started with ``ray start``) from this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.raycluster import RayCluster


@pytest.fixture(scope="package")
def ray_joined(ray_cluster: RayCluster) -> Iterator[str]:
    import ray

    ray.init(address=ray_cluster.address, log_to_driver=False)
    yield ray_cluster.address
    ray.shutdown()
