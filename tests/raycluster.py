"""A real Ray cluster on this machine for the tests and benchmarks: a head and worker
nodes started with the ``ray`` command (``ray start --head``, ``ray start --address``), as
on a real cluster, not ``ray.init()`` in the test's process.

Each node is a ``ray start --block`` process of its own: stopping it (SIGTERM) stops that
node's raylet and workers, so stopping one cluster never touches another on the machine
(``ray stop`` would stop them all). Token authentication is on, as ``ray start`` sets it up
by default: the cluster's token is in ``env`` (``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN``; this
process's own token when it has one), which a client process must have to connect.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.pgserver import _free_port

__all__ = ["RayCluster"]

_READY_S = 90.0


def _ray() -> str:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


class RayCluster:
    """A head node and ``workers`` worker nodes, each with ``cpus`` CPUs.

    Attributes:
        address: ``host:port`` of the head (``--ray-address``).
        env: the environment a client needs (the process's own plus the token).
    """

    def __init__(self, workers: int = 1, cpus: int = 1, head_cpus: int | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="forgeline-ray-"))
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        self.env = {**os.environ, **(extra_env or {}), "RAY_AUTH_MODE": "token",
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.env.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
        self._nodes: list[subprocess.Popen[bytes]] = []
        try:
            self._start("--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                        "--include-dashboard=false", f"--temp-dir={self.root}",
                        f"--num-cpus={cpus if head_cpus is None else head_cpus}")
            self._wait(1)
            for i in range(workers):  # one at a time: several starting at once time out
                self._start(f"--address={self.address}", "--node-ip-address=127.0.0.1",
                            f"--num-cpus={cpus}")
                self._wait(2 + i)
        except BaseException:
            self.stop()
            raise

    def _start(self, *args: str) -> None:
        log = open(self.root / f"node{len(self._nodes)}.log", "wb")  # noqa: SIM115
        self._nodes.append(subprocess.Popen(
            [_ray(), "start", "--block", "--disable-usage-stats", *args], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _wait(self, nodes: int) -> None:
        """Until ``nodes`` nodes are alive (``ray list nodes`` would need the dashboard)."""
        probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
                 "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + _READY_S
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._nodes):
                raise RuntimeError(f"a Ray node exited at start; see {self.root}/node*.log")
            done = subprocess.run([sys.executable, "-c", probe, self.address], env=self.env,
                                  capture_output=True, text=True, timeout=_READY_S)
            if done.returncode == 0 and int(done.stdout.split()[-1]) >= nodes:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Ray cluster did not reach {nodes} nodes in {_READY_S:.0f} s")

    def stop(self) -> None:
        for node in reversed(self._nodes):
            if node.poll() is None:
                node.terminate()
        for node in self._nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, 9)
        self._nodes.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
