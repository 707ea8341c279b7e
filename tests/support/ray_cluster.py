"""A Ray cluster of real nodes on loopback for the executor tests, and the repositories their plans run in.

Found by trying, on a machine whose host interface is not loopback:
- RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before Ray is imported: otherwise Ray rewrites 127.0.0.1 to the host's
  interface address, and the driver cannot reach the GCS, which listens on loopback;
- nodes take `node_ip_address="127.0.0.1"` (not `_node_ip_address`), no dashboard, one CPU each, and a custom
  resource of their own ({"node_a": 1}, {"node_b": 1}) so that a plan's agent `resources` steer its tasks.
A cluster comes up in about 7 s: share one per test module."""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before `import ray` (see above)

import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

NODE_ARGS: dict[str, Any] = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}


@contextmanager
def two_node_cluster(cache: Path) -> Iterator[Cluster]:
    """A head node (resource node_a) and a second node (node_b); `cache` is where nodes keep run repositories
    (PAREX_RAY_CACHE, inherited by their workers)."""
    os.environ["PAREX_RAY_CACHE"] = str(cache)
    cluster = Cluster(initialize_head=True, head_node_args={**NODE_ARGS, "include_dashboard": False,
                                                            "resources": {"node_a": 1}})
    try:
        cluster.add_node(**NODE_ARGS, resources={"node_b": 1})
        cluster.wait_for_nodes()
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        os.environ.pop("PAREX_RAY_CACHE", None)


def address(cluster: Cluster) -> str:
    """What a plan's `ray_address` names: the head's GCS (parex connects itself)."""
    return str(cluster.head_node.gcs_address)


def session_logs(cluster: Cluster) -> Path:
    return Path(cluster.head_node.get_session_dir_path()) / "logs"


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True).stdout


def repository(ws: Path, files: dict[str, str]) -> Path:
    """A git repository on `main` holding `files`, committed."""
    ws.mkdir(parents=True, exist_ok=True)
    git(ws, "init", "-q", "-b", "main")
    git(ws, "config", "user.email", "dev@example.com")
    git(ws, "config", "user.name", "dev")
    for name, text in files.items():
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(textwrap.dedent(text).lstrip())
    (ws / ".gitignore").write_text(".parex/\n")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "base")
    return ws
