"""Several `taskgate serve` nodes on one database behind a real nginx, for the e2e tests.

`running_cluster(work_dir, backend)` starts N nodes (gunicorn, 2 workers each), each on its
own TCP port on 127.0.0.1 and all sharing one database and one token signing secret, then
nginx with deploy/nginx/taskgate-cluster.conf: its example node addresses replaced by those
ports, and its ports, paths and certificate localized as nginx_support.py does for the
single-node config. A node keeps its port across restarts, as nginx's upstream names it.

The database is a `Backend`: a SQLite file on this host, or a PostgreSQL URL given to the
nodes as TASKGATE_DATABASE_URL; nothing else differs.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from .harness import REPO_ROOT, ServerProcess, free_port, group_members, mint_test_token
from .nginx_support import NginxWorkspace, localized_config, nginx_workspace, running_nginx

CLUSTER_CONF = REPO_ROOT / "deploy" / "nginx" / "taskgate-cluster.conf"
# The example nodes of the upstream block: `server nodeN.taskgate.internal:8000 <params>;`.
EXAMPLE_NODE = re.compile(
    r"(?m)^(?P<indent>[ \t]*)server node\d+\.taskgate\.internal:8000(?P<params>[^;]*);\n"
)
NODE_WORKERS = 2
# `upstream=$upstream_addr ustatus=` in the cluster config's log format; nginx lists every
# node it tried, comma-separated ("-" when it passed the request to none).
UPSTREAM_FIELD = re.compile(r" upstream=(?P<addresses>.+?) ustatus=")


@dataclass(frozen=True)
class Backend:
    """Where the nodes keep their state: the SQLite file `database`, unless `env` names a
    PostgreSQL database (TASKGATE_DATABASE_URL), in which case `database` goes unused."""

    name: str
    database: Path
    env: Mapping[str, str] = field(default_factory=dict)


def sqlite_backend(work_dir: Path) -> Backend:
    """One SQLite file on this host, shared by every node's processes."""
    return Backend("sqlite", work_dir / "taskgate.db")


def postgres_backend(work_dir: Path, database_url: str) -> Backend:
    """A PostgreSQL database (postgresql://…) shared by every node."""
    return Backend("postgres", work_dir / "unused.db", {"TASKGATE_DATABASE_URL": database_url})


def cluster_site_config(workspace: NginxWorkspace, node_ports: Sequence[int]) -> str:
    """deploy/nginx/taskgate-cluster.conf with one upstream server per local node port."""
    text = localized_config(
        CLUSTER_CONF,
        http_port=workspace.http_port,
        https_port=workspace.https_port,
        nginx_dir=workspace.nginx_dir,
    )
    examples = list(EXAMPLE_NODE.finditer(text))
    if not examples:
        pytest.fail(
            f"{CLUSTER_CONF} has no `server nodeN.taskgate.internal:8000 …;` line, which "
            "tests/e2e/cluster.py replaces: update the pattern with the file"
        )
    first = examples[0]
    ours = "".join(
        f"{first['indent']}server 127.0.0.1:{port}{first['params']};\n" for port in node_ports
    )
    # Our nodes in place of the first example, the other examples dropped.
    return text[: first.start()] + ours + EXAMPLE_NODE.sub("", text[first.start() :])


@dataclass
class Cluster:
    """The nodes, nginx in front of them, and an admin token valid on every node."""

    nodes: list[ServerProcess]
    workspace: NginxWorkspace
    secret_file: Path
    node_pids: dict[str, set[int]] = field(default_factory=dict)
    """Every pid seen in each node's process group ("node2#1": its first run), see `note_pids`."""

    @property
    def url(self) -> str:
        """nginx's HTTPS address."""
        return self.workspace.https_url

    @property
    def ca_pem(self) -> Path:
        return self.workspace.ca_pem

    def token(self, scopes: tuple[str, ...] = ("admin",)) -> str:
        return mint_test_token(self.secret_file, scopes)

    def client(self, timeout: float | httpx.Timeout = 30.0) -> httpx.Client:
        """An HTTPS client to nginx, verifying its certificate, authenticated as an admin."""
        return httpx.Client(
            base_url=self.url,
            verify=self.workspace.ssl_context(),
            timeout=timeout,
            headers={"Authorization": f"Bearer {self.token()}"},
        )

    def note_pids(self) -> None:
        """Remember the pids of every running node's master and workers (by node and run)."""
        for node in self.nodes:
            if node.running:
                key = f"{node.name}#{node.runs}"
                self.node_pids.setdefault(key, set()).update(group_members(node.pid))

    def node_run_of_pid(self, pid: int) -> str | None:
        """Which node run ("node2#1") a pid noted by `note_pids` belonged to."""
        return next((key for key, pids in self.node_pids.items() if pid in pids), None)

    def access_log_lines(self) -> int:
        """How many lines nginx's access log has now (a mark for `upstream_counts`)."""
        return len(self.nginx_access_log().splitlines())

    def upstream_counts(self, since_line: int = 0) -> Counter[str]:
        """Requests nginx passed to each node (by node name), from its access log (from
        line `since_line` on). A request passed on after a failure counts for each node
        it tried, and once more under "passed on"."""
        by_address = {f"127.0.0.1:{node.port}": node.name for node in self.nodes}
        counts: Counter[str] = Counter()
        for line in self.nginx_access_log().splitlines()[since_line:]:
            match = UPSTREAM_FIELD.search(line)
            if match is None or match["addresses"] == "-":
                continue
            addresses = [address.strip() for address in match["addresses"].split(",")]
            for address in addresses:
                counts[by_address.get(address, address)] += 1
            if len(addresses) > 1:
                counts["passed on"] += 1
        return counts

    def nginx_access_log(self) -> str:
        path = self.workspace.nginx_dir / "logs" / "taskgate.access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def node_logs(self) -> dict[str, str]:
        """The whole output of every run of every node ("node2-run1.log": text)."""
        return {
            path.name: path.read_text(errors="replace")
            for node in self.nodes
            for path in sorted(node.temp_dir.glob(f"{node.name}-run*.log"))
        }

    def output(self) -> str:
        """nginx's logs and the tail of every node's output, for failure messages."""
        return "\n".join([self.workspace.output(), *(node.output_tail() for node in self.nodes)])


@contextlib.contextmanager
def running_cluster(
    work_dir: Path, backend: Backend, *, size: int = 3, **settings: Any
) -> Iterator[Cluster]:
    """`size` nodes on `backend` behind nginx; every process is stopped at exit.

    `settings` (Settings field names) go to every node, after the cluster's own: gunicorn
    with two workers, nginx as the trusted proxy, one shared secret file.
    """
    secret_file = work_dir / "cluster.secret"
    node_settings = {
        "workers": NODE_WORKERS,
        "trusted_proxies": "127.0.0.1/32",
        "auth_secret_file": str(secret_file),
        **settings,
    }
    nodes = [
        ServerProcess(
            backend.database,
            work_dir,
            f"node{number}",
            node_settings,
            port=free_port(),
            env=backend.env,
        )
        for number in range(1, size + 1)
    ]
    with nginx_workspace() as workspace:
        cluster = Cluster(nodes=nodes, workspace=workspace, secret_file=secret_file)
        try:
            # The first node migrates the database and writes the secret; the others then
            # start side by side.
            nodes[0].start()
            for node in nodes[1:]:
                node.spawn()
            for node in nodes[1:]:
                node.wait_ready()
            cluster.note_pids()
            site = cluster_site_config(workspace, [node.port for node in nodes])
            with running_nginx(workspace, site, cluster.output):
                yield cluster
        finally:
            for node in nodes:
                node.stop()
            # The workspace goes at exit; its logs stay with the test's other files.
            shutil.copytree(workspace.nginx_dir / "logs", work_dir / "nginx-logs")
