"""A real Strongroom cluster for the compatibility suite.

`strongroom server --config nodeN.toml` processes on free loopback ports, each with its own temp
data dir and log file (the same layout as the Rust fixture in `tests/cluster/fixture.rs`). Every
wait polls a condition with a deadline; nothing sleeps a fixed time. The cluster itself is driven
with plain `requests` (installed with hvac) so that setting it up does not depend on the client
under test; the tests then use hvac.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")

#: Every cluster started in this process, so that a crash or a signal still stops its nodes.
RUNNING: list[Cluster] = []

#: Log tails of clusters that have stopped, printed in the summary when a test failed.
STOPPED_LOG_TAILS: list[str] = []

_PR_SET_PDEATHSIG = 1


def default_binary() -> str:
    """The server binary: `STRONGROOM_BIN`, else `$CARGO_TARGET_DIR/debug/strongroom`."""
    explicit = os.environ.get("STRONGROOM_BIN")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/strongroom-target")
    return os.path.join(target, "debug", "strongroom")


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all bound at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Polls `check` every 50 ms until it returns something other than None; fails after
    `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def _die_with_parent() -> None:
    """Runs in the child before exec: the node gets SIGKILL if the test process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass
class Node:
    """One `strongroom server` process."""

    id: int
    api_addr: str
    cluster_addr: str
    data_dir: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The node's base URL, as `sys/leader` reports it."""
        return f"http://{self.api_addr}"

    def log_tail(self, lines: int = 25) -> str:
        """The last `lines` lines of the node's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    """A running cluster of `size` nodes (sealed and uninitialized until `init`/`unseal`)."""

    binary: str
    size: int = 3
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="strongroom-compat-")))
    nodes: list[Node] = field(default_factory=list)
    http: requests.Session = field(default_factory=requests.Session)
    root_token: str = ""
    keys_base64: list[str] = field(default_factory=list)
    keys_hex: list[str] = field(default_factory=list)
    #: Give every node a `file` audit sink (`audit_log_path`) in its server file.
    audit_sinks: bool = False

    # ---- processes -------------------------------------------------------------------------

    def start(self) -> Cluster:
        """Writes every node's config, starts the processes and waits until each answers HTTP."""
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError(f"no strongroom binary at {self.binary} (set STRONGROOM_BIN)")
        ports = free_ports(2 * self.size)
        for index in range(self.size):
            node_id = index + 1
            self.nodes.append(
                Node(
                    id=node_id,
                    api_addr=f"127.0.0.1:{ports[2 * index]}",
                    cluster_addr=f"127.0.0.1:{ports[2 * index + 1]}",
                    data_dir=self.dir / f"node{node_id}",
                    config_path=self.dir / f"node{node_id}.toml",
                    log_path=self.dir / f"node{node_id}.log",
                )
            )
        peers = "".join(
            f'[[peers]]\nid = {n.id}\napi_addr = "{n.api_addr}"\n'
            f'cluster_addr = "{n.cluster_addr}"\n\n'
            for n in self.nodes
        )
        for node in self.nodes:
            node.config_path.write_text(
                f"node_id = {node.id}\n"
                f'data_dir = "{node.data_dir}"\n'
                f'api_addr = "{node.api_addr}"\n'
                f'cluster_addr = "{node.cluster_addr}"\n\n'
                f"{peers}"
                + (
                    f'[[audit.sink]]\ntype = "file"\npath = "{self.audit_log_path(node.id)}"\n'
                    'description = "compat suite sink"\n'
                    if self.audit_sinks
                    else ""
                )
            )
        RUNNING.append(self)
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            wait_for(f"node {node.id} HTTP", lambda node=node: self._answers(node))
        return self

    def audit_log_path(self, node_id: int) -> Path:
        """Where node `node_id`'s file audit sink writes (with `audit_sinks`)."""
        return self.dir / f"audit-node{node_id}.log"

    def _spawn(self, node: Node) -> None:
        log = open(node.log_path, "ab")
        try:
            node.process = subprocess.Popen(
                [self.binary, "server", "--config", str(node.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def _answers(self, node: Node) -> bool | None:
        if node.process is not None and node.process.poll() is not None:
            raise RuntimeError(
                f"node {node.id} exited with {node.process.returncode}:\n{node.log_tail()}"
            )
        try:
            self.http.get(f"{node.url}/v1/sys/seal-status", timeout=5)
            return True
        except requests.RequestException:
            return None

    def stop(self, keep_logs: bool = False) -> None:
        """Kills every node (SIGKILL) and removes the temp dir; keeps the log tails if asked
        (taken before the kill, so they end with what the nodes did, not with their shutdown)."""
        if keep_logs:
            for node in self.nodes:
                STOPPED_LOG_TAILS.append(
                    f"---- node {node.id} log tail ({node.log_path}) ----\n{node.log_tail()}"
                )
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.kill()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        if self in RUNNING:
            RUNNING.remove(self)
        if not os.environ.get("STRONGROOM_KEEP_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP --------------------------------------------------------------------------------

    def call(
        self, index: int, method: str, path: str, body: dict | None = None, token: str = ""
    ) -> tuple[int, dict]:
        """One JSON request to node `index`; (status, body or {})."""
        headers = {"X-Vault-Token": token} if token else {}
        try:
            response = self.http.request(
                method, f"{self.nodes[index].url}/v1/{path}", json=body, headers=headers, timeout=30
            )
        except requests.RequestException:
            return 0, {}
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {}

    # ---- seal ceremony -----------------------------------------------------------------------

    def init(self, index: int = 0, shares: int = 5, threshold: int = 3) -> None:
        """Initializes through node `index`, retrying while no leader is elected yet."""

        def attempt() -> dict | None:
            status, body = self.call(
                index, "PUT", "sys/init", {"secret_shares": shares, "secret_threshold": threshold}
            )
            return body if status == 200 else None

        result = wait_for("sys/init", attempt)
        self.root_token = result["root_token"]
        self.keys_base64 = list(result["keys_base64"])
        self.keys_hex = list(result["keys"])

    def unseal(self, index: int) -> None:
        """Unseals node `index` with the first three shares and checks it reports unsealed."""
        last: dict = {}
        for key in self.keys_base64[:3]:
            status, last = self.call(index, "PUT", "sys/unseal", {"key": key})
            assert status == 200, f"unseal node {index + 1}: {status} {last}"
        assert last.get("sealed") is False, f"node {index + 1} still sealed: {last}"

    def leader_index(self, ask: int) -> int | None:
        """The index of the leader as node `ask` reports it, if it knows one."""
        status, body = self.call(ask, "GET", "sys/leader")
        if status != 200:
            return None
        for index, node in enumerate(self.nodes):
            if body.get("leader_address") == node.url:
                return index
        return None

    def wait_leader(self) -> int:
        """Waits until every node agrees on one leader; returns its index."""

        def agreed() -> int | None:
            seen = {self.leader_index(index) for index in range(self.size)}
            if len(seen) == 1 and None not in seen:
                return seen.pop()
            return None

        return wait_for("all nodes to agree on a leader", agreed)

    def wait_serving(self, index: int) -> None:
        """Waits until node `index` serves an authenticated request with the root token."""
        wait_for(
            f"node {index + 1} to serve requests",
            lambda: (
                True
                if self.call(index, "GET", "auth/token/lookup-self", token=self.root_token)[0]
                == 200
                else None
            ),
        )

    def follower_index(self) -> int:
        """The index of a node that is not the leader."""
        leader = self.wait_leader()
        return next(index for index in range(self.size) if index != leader)


def start_cluster(size: int = 3, audit_sinks: bool = False) -> Cluster:
    """Starts `size` sealed, uninitialized nodes forming one cluster (binary: `default_binary`),
    each with a file audit sink when `audit_sinks`."""
    return Cluster(binary=default_binary(), size=size, audit_sinks=audit_sinks).start()
