"""A real MariaDB Galera cluster (or one plain MariaDB server) for the tests that need one.

`GaleraCluster.start(3)` starts three `mariadbd` processes with the `galera-4`
provider on loopback, each with its own data directory and its own free
ports (SQL, group communication, IST, SST), never the machine's MariaDB on
3306. Node 1 bootstraps the cluster (`--wsrep-new-cluster`); nodes 2 and 3
join one after the other, each receiving a full state transfer
(`wsrep_sst_method=rsync`) before the next starts. `start` returns once
every node reports `wsrep_cluster_size = 3` and `Synced`.

The rsync SST drops root privileges, so when the tests run as root the
nodes run as the `mysql` user on directories it owns (as root the joiners
abort with "Permission denied"). Nodes are stopped by their pid: SIGTERM,
then SIGKILL after a deadline; `kill(i)` is a crash (SIGKILL) and
`restart(i)` brings the node back to rejoin (IST, or SST after the crash).

`standalone_server()` starts one node with the same settings and wsrep off:
the single-server baseline of the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from ..polling import poll
from ..service_markers import require_service

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
USER = "bpt"  # a TCP account created on node 1 (replicated): the nodes' root only logs in on the socket
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
# Small buffers (three servers share two cores); durability comes from the other nodes
# (flush at commit = 2 is Galera's usual setting). Failure detection a little faster than
# the defaults (PT5S/PT15S) so a killed node is evicted within seconds.
SERVER_OPTIONS = (
    "--innodb-buffer-pool-size=96M", "--innodb-log-file-size=48M", "--innodb-flush-log-at-trx-commit=2",
    "--performance-schema=OFF", "--max-connections=200", "--skip-log-bin",
    "--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2",
    "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin", "--wsrep-log-conflicts=ON",
)
PROVIDER_OPTIONS = ("gcache.size=128M", "cert.log_conflicts=YES", "evs.suspect_timeout=PT3S",
                    "evs.inactive_timeout=PT6S", "evs.install_timeout=PT6S")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClusterError(RuntimeError):
    pass


@dataclass
class Node:
    index: int
    base: Path
    sql_port: int = field(default_factory=free_port)
    gcomm_port: int = field(default_factory=free_port)
    ist_port: int = field(default_factory=free_port)
    sst_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket(self) -> Path:
        return self.base / "mysqld.sock"

    @property
    def log(self) -> Path:
        return self.base / "error.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def url(self, database: str) -> str:
        return f"mysql://{USER}@127.0.0.1:{self.sql_port}/{database}"

    def connect(self, **kwargs):
        return pymysql.connect(host="127.0.0.1", port=self.sql_port, user=USER, autocommit=True,
                               connect_timeout=5, **kwargs)

    def status(self, name: str) -> str | None:
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
            row = cur.fetchone()
            return row[1] if row else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "<no error log>"


class _Servers:
    """What a cluster and a standalone server share: directories, processes, teardown."""

    def __init__(self, count: int, prefix: str):
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.run_as = "mysql" if os.geteuid() == 0 else None
        self.nodes = [Node(i + 1, self.root / f"node{i + 1}") for i in range(count)]
        for node in self.nodes:
            node.base.mkdir()
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            for path in (self.root, *(n.base for n in self.nodes)):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _install(self, node: Node) -> None:
        command = ["mariadb-install-db", "--no-defaults", f"--datadir={node.datadir}",
                   "--auth-root-authentication-method=normal", "--skip-test-db"]
        if self.run_as:
            command.append(f"--user={self.run_as}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise ClusterError(f"mariadb-install-db failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def _command(self, node: Node, extra: list[str]) -> list[str]:
        command = ["mariadbd", "--no-defaults", f"--datadir={node.datadir}", f"--socket={node.socket}",
                   f"--pid-file={node.base / 'mysqld.pid'}", f"--log-error={node.log}",
                   f"--port={node.sql_port}", "--bind-address=127.0.0.1", *SERVER_OPTIONS, *extra]
        if self.run_as:
            command.append(f"--user={self.run_as}")
        return command

    def _launch(self, node: Node, extra: list[str]) -> None:
        node.proc = subprocess.Popen(self._command(node, extra), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def _create_test_user(self, node: Node) -> None:
        with contextlib.closing(_socket_conn(node)) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1'")
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'")

    def _wait(self, node: Node, ready, what: str, timeout: float = START_TIMEOUT) -> None:
        last = "not reachable"

        def ready_now() -> bool:
            nonlocal last
            if node.proc is None or node.proc.poll() is not None:
                raise ClusterError(f"node {node.index} exited while waiting for {what}:\n{node.log_tail()}")
            try:
                if ready(node):
                    return True
                last = "not yet"
            except pymysql.err.MySQLError as exc:
                last = str(exc)
            return False

        if poll(ready_now, timeout=timeout, interval=0.25):
            return
        raise ClusterError(f"node {node.index}: no {what} within {timeout:g}s ({last}):\n{node.log_tail()}")

    def stop_node(self, node: Node, sig: int = signal.SIGTERM) -> None:
        if node.proc is None:
            return
        if node.proc.poll() is None:
            node.proc.send_signal(sig)
            try:
                node.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(STOP_TIMEOUT)
        node.proc = None

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self.stop_node(node)
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        name = f"bpt_{uuid.uuid4().hex[:12]}"
        with contextlib.closing(self.nodes[0].connect()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        return name

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class GaleraCluster(_Servers):
    def __init__(self, size: int = 3):
        super().__init__(size, "bpt-galera-")
        self.name = f"bpt-{uuid.uuid4().hex[:8]}"

    @classmethod
    def start(cls, size: int = 3) -> GaleraCluster:
        require_service("galera")
        cluster = cls(size)
        try:
            cluster._install(cluster.nodes[0])
            for node in cluster.nodes:
                cluster._start_node(node, bootstrap=node.index == 1)
                if node.index == 1:
                    cluster._create_test_user(node)
            cluster.wait_synced()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _wsrep_options(self, node: Node) -> list[str]:
        peers = ",".join(f"127.0.0.1:{n.gcomm_port}" for n in self.nodes)
        provider = ";".join((f"gmcast.listen_addr=tcp://127.0.0.1:{node.gcomm_port}",
                             f"ist.recv_addr=127.0.0.1:{node.ist_port}", *PROVIDER_OPTIONS))
        return ["--wsrep-on=ON", f"--wsrep-provider={PROVIDER}", f"--wsrep-cluster-name={self.name}",
                f"--wsrep-cluster-address=gcomm://{peers}", f"--wsrep-node-name=node{node.index}",
                f"--wsrep-node-address=127.0.0.1:{node.gcomm_port}",
                f"--wsrep-provider-options={provider}", "--wsrep-sst-method=rsync",
                f"--wsrep-sst-receive-address=127.0.0.1:{node.sst_port}", "--wsrep-slave-threads=2"]

    def _start_node(self, node: Node, *, bootstrap: bool = False, extra: tuple[str, ...] = ()) -> None:
        node.datadir.mkdir(exist_ok=True)
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(node.datadir, entry.pw_uid, entry.pw_gid)
        options = [*self._wsrep_options(node), *extra]
        if bootstrap:
            options.append("--wsrep-new-cluster")
        self._launch(node, options)
        if bootstrap:
            self._wait(node, _socket_synced, "Synced state (bootstrap)")
        else:
            self._wait(node, _synced, "Synced state")

    def wait_synced(self, timeout: float = START_TIMEOUT) -> None:
        """Every running node Synced in a cluster of all running nodes."""
        running = [n for n in self.nodes if n.pid is not None]
        for node in running:
            self._wait(node, lambda n: _synced(n) and n.status("wsrep_cluster_size") == str(len(running)),
                       f"cluster size {len(running)}", timeout)

    def kill(self, index: int) -> None:
        """A crash: SIGKILL to the node's pid."""
        self.stop_node(self.nodes[index - 1], signal.SIGKILL)

    def restart(self, index: int, *, donor: str | None = None) -> None:
        """Start a stopped node again; it rejoins the cluster and is Synced on return. After a
        crash its position is recovered first (as the systemd unit's galera_recovery does), so it
        catches up by IST from the donor's gcache instead of a full copy. `donor`: the node
        name to prefer as donor (say, one no instance writes to)."""
        node = self.nodes[index - 1]
        if node.pid is not None:
            raise ClusterError(f"node {index} is running")
        extra = []
        position = self._recovered_position(node)
        if position:
            extra.append(f"--wsrep-start-position={position}")
        if donor:
            extra.append(f"--wsrep-sst-donor={donor},")  # the trailing comma: any other node if it cannot
        self._start_node(node, extra=tuple(extra))
        self.wait_synced()

    def _recovered_position(self, node: Node) -> str | None:
        """uuid:seqno recovered from InnoDB when grastate.dat lost it (a crash), else None."""
        grastate = node.datadir / "grastate.dat"
        if not grastate.exists() or not re.search(r"^seqno:\s+-1\s*$", grastate.read_text(), re.M):
            return None
        log = node.base / "recover.log"
        command = [*self._command(node, self._wsrep_options(node)), "--wsrep-recover", f"--log-error={log}"]
        subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=START_TIMEOUT)
        text = log.read_text(errors="replace") if log.exists() else ""
        found = re.findall(r"Recovered position: (\S+:\d+)", text)
        return found[-1] if found else None


class StandaloneServer(_Servers):
    """One MariaDB server with the cluster nodes' settings and no replication."""

    def __init__(self):
        super().__init__(1, "bpt-mariadb-")
        self.node = self.nodes[0]

    @classmethod
    def start(cls) -> StandaloneServer:
        require_service("galera")
        server = cls()
        try:
            server._install(server.node)
            server._launch(server.node, [])
            server._wait(server.node, _socket_up, "socket")
            server._create_test_user(server.node)
        except BaseException:
            server.stop()
            raise
        return server


def _socket_conn(node: Node):
    # probed first: PyMySQL leaks the socket object of a unix-socket connect that fails
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(node.socket))
        except OSError as exc:
            raise pymysql.err.OperationalError(2002, f"socket not accepting: {exc}") from None
    return pymysql.connect(unix_socket=str(node.socket), user="root", autocommit=True, connect_timeout=2)


def _socket_up(node: Node) -> bool:
    with contextlib.closing(_socket_conn(node)):
        return True


def _socket_synced(node: Node) -> bool:
    with contextlib.closing(_socket_conn(node)) as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'")
        row = cur.fetchone()
        return bool(row) and row[1] == "Synced"


def _synced(node: Node) -> bool:
    return node.status("wsrep_local_state_comment") == "Synced" and node.status("wsrep_ready") == "ON"


def prerequisites_missing() -> list[str]:
    """What this machine lacks to run the cluster (empty: nothing)."""
    missing = [name for name in ("mariadbd", "mariadb-install-db", "rsync", "wsrep_sst_rsync")
               if shutil.which(name) is None]
    if not Path(PROVIDER).exists():
        missing.append(PROVIDER)
    return missing
