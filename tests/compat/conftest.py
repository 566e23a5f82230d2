"""Fixtures of the hvac compatibility suite.

The session shares one real 3-node cluster (initialized and unsealed over plain HTTP, see
`cluster.py`); the main tests point an unmodified `hvac.Client` at a FOLLOWER, so every request
exercises Strongroom's follower path (read index from the leader, writes proposed to it).
`test_sys.py` starts its own uninitialized cluster to drive init/unseal through hvac.

Nodes are killed when the session ends, when it fails, on SIGTERM/SIGINT (e.g. `timeout`), and
by the kernel if this process dies (PR_SET_PDEATHSIG). When a test failed, the tail of every
node's log is printed in the summary.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator

import hvac
import pytest

from cluster import RUNNING, STOPPED_LOG_TAILS, Cluster, start_cluster

#: Whether any test failed (then the summary prints the nodes' log tails).
FAILED = pytest.StashKey[bool]()


def _stop_everything(*_args: object) -> None:
    for running in list(RUNNING):
        running.stop(keep_logs=True)


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM (e.g. from `timeout`): stop the nodes, then exit like a terminated process."""
    _stop_everything()
    raise SystemExit(128 + signum)


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    config.stash[FAILED] = False


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_everything()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.failed:
        item.config.stash[FAILED] = True
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if config.stash.get(FAILED, False) and STOPPED_LOG_TAILS:
        terminalreporter.section("strongroom node logs (tails)")
        for tail in STOPPED_LOG_TAILS:
            terminalreporter.write_line(tail)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The shared cluster: 3 nodes, initialized, every node unsealed and serving."""
    started = start_cluster()
    try:
        started.init()
        for index in range(started.size):
            started.unseal(index)
        started.wait_leader()
        for index in range(started.size):
            started.wait_serving(index)
        yield started
    finally:
        started.stop(keep_logs=True)


@pytest.fixture(scope="session")
def root_token(cluster: Cluster) -> str:
    """The shared cluster's root token."""
    return cluster.root_token


@pytest.fixture
def leader_url(cluster: Cluster) -> str:
    """The current leader's base URL."""
    return cluster.nodes[cluster.wait_leader()].url


@pytest.fixture
def follower_url(cluster: Cluster) -> str:
    """The base URL of a node that is not the leader."""
    return cluster.nodes[cluster.follower_index()].url


@pytest.fixture
def client(follower_url: str, root_token: str) -> hvac.Client:
    """An unmodified hvac client on a follower, with the root token."""
    return hvac.Client(url=follower_url, token=root_token, timeout=30)


@pytest.fixture
def leader_client(leader_url: str, root_token: str) -> hvac.Client:
    """An hvac client on the leader, with the root token."""
    return hvac.Client(url=leader_url, token=root_token, timeout=30)


@pytest.fixture
def node_clients(cluster: Cluster, root_token: str) -> list[hvac.Client]:
    """One root hvac client per node, in node order."""
    return [hvac.Client(url=node.url, token=root_token, timeout=30) for node in cluster.nodes]


@pytest.fixture
def uid() -> str:
    """A short unique name part, so tests sharing the cluster never collide."""
    return uuid.uuid4().hex[:10]
