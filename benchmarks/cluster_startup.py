"""Cluster start-up time: suanli's kinds beside the same Dask deployment by hand.

Start-up is timed from the call until a connected client sees every worker;
closing is timed separately. Each round runs the rows in a new random order,
with a pause before each, so drifts in machine load hit all of them. SSH runs
against a real sshd on loopback (started here, as in the tests): the scheduler
on 127.0.0.1 and one worker on each of 127.0.0.1, 127.0.0.2 and 127.0.0.3.

    python benchmarks/cluster_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "cluster"))

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


def _suanli(spec: Any) -> Callable[[], tuple[float, float]]:
    from suanli import cluster

    def once() -> tuple[float, float]:
        began = time.perf_counter()
        started = cluster.start(spec)
        started.client.wait_for_workers(started.worker_count)
        up = time.perf_counter() - began
        began = time.perf_counter()
        started.close()
        return up, time.perf_counter() - began

    return once


def _by_hand_local() -> tuple[float, float]:
    from distributed import Client, LocalCluster

    began = time.perf_counter()
    local = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0")
    client = Client(local)
    client.wait_for_workers(2)
    up = time.perf_counter() - began
    began = time.perf_counter()
    client.close()
    local.close()
    return up, time.perf_counter() - began


def _by_hand_ssh(server: Any) -> Callable[[], tuple[float, float]]:
    def once() -> tuple[float, float]:
        from distributed import Client, SSHCluster

        began = time.perf_counter()
        remote = SSHCluster(["127.0.0.1", *HOSTS],
                            connect_options={"port": server.port,
                                             "client_keys": [str(server.client_key)],
                                             "known_hosts": str(server.known_hosts)},
                            worker_options={"nthreads": 1, "memory_limit": "2GiB"},
                            scheduler_options={"host": "127.0.0.1",
                                               "dashboard_address": "127.0.0.1:0"})
        client = Client(remote)
        client.wait_for_workers(3)
        up = time.perf_counter() - began
        began = time.perf_counter()
        client.close()
        remote.close()
        return up, time.perf_counter() - began

    return once


def _measure(rows: dict[str, Callable[[], tuple[float, float]]], repeats: int
             ) -> dict[str, tuple[list[float], list[float]]]:
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in rows}
    order = list(rows)
    for repeat in range(repeats):
        # A fresh order each round, and a pause for the last cluster's processes
        # to finish exiting: otherwise whichever row follows SSH pays for it.
        random.Random(repeat).shuffle(order)
        for name in order:
            time.sleep(2)
            up, down = rows[name]()
            times[name][0].append(up)
            times[name][1].append(down)
            print(f"  {name}: up {up:.2f} s, down {down:.2f} s", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from loopback_sshd import running_sshd

    from suanli.cluster import ClusterSpec

    local_spec = ClusterSpec(kind="local", workers=2, threads_per_worker=1,
                             dashboard_address="127.0.0.1:0")
    with tempfile.TemporaryDirectory() as folder, running_sshd(Path(folder)) as server:
        ssh_spec = ClusterSpec(
            kind="ssh", address="127.0.0.1", hosts=tuple(HOSTS), threads_per_worker=1,
            memory_limit="2GiB", dashboard_address="127.0.0.1:0",
            ssh={"port": server.port, "client_keys": [str(server.client_key)],
                 "known_hosts": str(server.known_hosts)})
        rows = {
            "suanli local (2 workers)": _suanli(local_spec),
            "LocalCluster + Client by hand": _by_hand_local,
            "suanli ssh (3 hosts)": _suanli(ssh_spec),
            "SSHCluster + Client by hand": _by_hand_ssh(server),
        }
        times = _measure(rows, args.repeats)

    import dask
    import distributed

    print(f"\n{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, "
          f"dask/distributed {dask.__version__}/{distributed.__version__}; "
          f"median of {args.repeats}\n")
    print("| cluster | start-up (s) | close (s) | start-up vs by hand |")
    print("|---|---:|---:|---:|")
    names = list(rows)
    for i, name in enumerate(names):
        up = statistics.median(times[name][0])
        down = statistics.median(times[name][1])
        peer = names[i + 1] if i % 2 == 0 else names[i - 1]
        ratio = up / statistics.median(times[peer][0])
        print(f"| {name} | {up:.2f} | {down:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
