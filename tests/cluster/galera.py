"""A three-node MariaDB Galera cluster on loopback with HAProxy in front, from the repository's
own files: every node's defaults file includes docker/galera/galera.cnf, HAProxy runs
docker/haproxy/haproxy.cfg. compose.cluster.yml runs the same two files in containers.

    .venv/bin/python -m tests.cluster.galera up    # until Ctrl-C or SIGTERM

Ports, all on 127.0.0.1 and derived from one base port B (23306 unless told otherwise), so a
second cluster can run beside the first with another B:

    node i (1..3)   SQL B+i-1        Galera B+1000+10(i-1), its IST receiver +1, rsync SST +2
    HAProxy         B-6

The nodes run as the mysql user: the joiner's rsync daemon drops root for an unprivileged user,
which then cannot write a root-owned data directory. Only node 1 is installed
(mariadb-install-db); it bootstraps the cluster and nodes 2 and 3 start empty and receive
everything by rsync SST, as in compose.cluster.yml.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from tests.processes import mariadb_root

ROOT = Path(__file__).resolve().parents[2]
GALERA_CNF = ROOT / "docker" / "galera" / "galera.cnf"
HAPROXY_CFG = ROOT / "docker" / "haproxy" / "haproxy.cfg"
PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
PROGRAMS = ("mariadbd", "mariadb-install-db", "rsync", "haproxy")

# Failure detection for a LAN, in wsrep_provider_options. That option is one string, which
# also holds each node's addresses, so it cannot live in galera.cnf: the nodes below append
# this to their own string and compose.cluster.yml passes the very same text on each node's
# command line (tests/cluster/test_topology.py checks both). A node that stops answering is
# suspected after 3 s (default 5 s) and dropped from the cluster after 6 s (default 15 s);
# keepalives every second (at most a third of the suspect timeout).
LAN_TIMEOUTS = "evs.keepalive_period=PT1S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S"

STOP_SECONDS = 15  # a clean shutdown longer than this is killed (a joining node ignores SIGTERM)


def port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (sockets in TIME_WAIT do not count: every
    program here sets SO_REUSEADDR, as this probe does)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def connect(port: int, database: str | None = None, **options) -> pymysql.Connection:
    """Root on 127.0.0.1:port, with short timeouts: a node that is down must not stall a test."""
    options.setdefault("connect_timeout", 2)
    options.setdefault("read_timeout", 10)
    return mariadb_root(database, port, **options)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"    ({path}: {error.strerror})"
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])


# A node or HAProxy leads a process group of its own (start_new_session), which also holds
# what it spawns (a node's SST script and rsync daemon). The leader is reaped only once the
# whole group is killed: until then its pid, hence the group id, cannot be reused.


def alive(process: subprocess.Popen | None) -> bool:
    """Whether ``process`` still runs; does not reap it."""
    if process is None or process.returncode is not None:
        return False
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:  # reaped already
        return False


def reap(process: subprocess.Popen) -> int:
    """SIGKILL to whatever is left of the process's group, then its exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def end(process: subprocess.Popen, timeout: float) -> int:
    """SIGTERM, then SIGKILL to the group after ``timeout`` s; the exit code."""
    if alive(process):
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(process) and time.monotonic() < deadline:
            time.sleep(0.05)
    return reap(process)


def run_group(args: list[str], timeout: float) -> tuple[int, str]:
    """Run ``args`` in a process group of its own to the end; (exit code, output). Whatever
    interrupts the wait (the timeout: subprocess.TimeoutExpired, Ctrl-C) kills the whole group
    first: mariadb-install-db is a script whose mariadbd would otherwise go on alone."""
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except BaseException:
        reap(process)
        raise
    return process.returncode, output


@dataclass
class Node:
    """One mariadbd of the cluster. Its files are under ``<cluster root>/node<index>``."""

    index: int  # 1..3
    port: int  # SQL
    galera_port: int  # group communication (gmcast); IST is galera_port + 1
    sst_port: int
    cluster: Cluster = field(repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)
    last_transfer: str = ""  # how the last start() received the data: "IST", "SST" or "none"
    _log_offset: int = field(default=0, repr=False)  # the error log's size at the last launch

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def ist_port(self) -> int:
        return self.galera_port + 1

    @property
    def dir(self) -> Path:
        if self.cluster.root is None:
            raise RuntimeError("the cluster has no directory yet: call Cluster.start()")
        return self.cluster.root / self.name

    @property
    def datadir(self) -> Path:
        return self.dir / "data"

    @property
    def defaults_file(self) -> Path:
        return self.dir / "my.cnf"

    @property
    def error_log(self) -> Path:
        return self.dir / "error.log"

    @property
    def ports(self) -> dict[str, int]:
        return {
            "SQL": self.port,
            "Galera": self.galera_port,
            "IST": self.ist_port,
            "SST": self.sst_port,
        }

    @property
    def running(self) -> bool:
        return alive(self.process)

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str | None = None, **options) -> pymysql.Connection:
        """A connection as root (autocommit unless told otherwise)."""
        return connect(self.port, database, **options)

    def status(self) -> dict[str, str]:
        """The node's wsrep status variables; empty when it does not answer."""
        try:
            with self.connect(read_timeout=2) as connection, connection.cursor() as cursor:
                cursor.execute("SHOW GLOBAL STATUS LIKE 'wsrep%%'")
                return dict(cursor.fetchall())
        except pymysql.Error:
            return {}

    def state(self) -> str:
        """wsrep_local_state_comment ("Synced", "Donor/Desynced", ...), or "down"."""
        return self.status().get("wsrep_local_state_comment", "down")

    def donors(self) -> str:
        """wsrep_sst_donor: the node HAProxy would use last first (node3, then node2), never
        node1 unless they cannot: a donor leaves Synced (HAProxy stops using it) and an rsync
        SST read-locks it. The trailing comma lets any node donate when none listed can."""
        return ",".join(node.name for node in reversed(self.cluster.nodes[1:]) if node is not self) + ","

    def defaults(self) -> str:
        """This node's defaults file: the shared galera.cnf, then what is this node's own."""
        nodes = self.cluster.nodes
        provider_options = "; ".join(
            [
                f"base_port={self.galera_port}",
                f"gmcast.listen_addr=tcp://127.0.0.1:{self.galera_port}",
                f"ist.recv_addr=127.0.0.1:{self.ist_port}",
                "gcache.size=64M",
                *LAN_TIMEOUTS.split(";"),
            ]
        )
        user = "user = mysql\n" if os.geteuid() == 0 else ""
        return (
            f"!include {GALERA_CNF}\n"
            "[mariadb]\n"
            f"{user}"
            f"datadir = {self.datadir}\n"
            f"socket = {self.dir / 'mysqld.sock'}\n"
            f"pid_file = {self.dir / 'mysqld.pid'}\n"
            f"log_error = {self.error_log}\n"
            "bind_address = 127.0.0.1\n"
            f"port = {self.port}\n"
            "innodb_buffer_pool_size = 64M\n"
            "innodb_log_file_size = 16M\n"
            f"wsrep_node_name = {self.name}\n"
            "wsrep_node_address = 127.0.0.1\n"
            f"wsrep_node_incoming_address = 127.0.0.1:{self.port}\n"
            f"wsrep_sst_receive_address = 127.0.0.1:{self.sst_port}\n"
            f"wsrep_sst_donor = {self.donors()}\n"
            f"wsrep_cluster_address = gcomm://{','.join(f'127.0.0.1:{n.galera_port}' for n in nodes)}\n"
            f'wsrep_provider_options = "{provider_options}"\n'
        )

    def failure(self, what: str) -> str:
        """A message about this node with the end of its error log."""
        return f"{self.name} (port {self.port}) {what}; end of {self.error_log}:\n{tail(self.error_log)}"

    def launch(self, *options: str) -> None:
        """Start mariadbd without waiting for it (``options`` after the defaults file)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.process.pid})")
        taken = [f"{kind} {port}" for kind, port in self.ports.items() if port_in_use(port)]
        if taken:
            raise RuntimeError(f"{self.name} cannot start: port {', '.join(taken)} in use on 127.0.0.1")
        self._log_offset = self.error_log.stat().st_size if self.error_log.exists() else 0
        with (self.dir / "stdout.log").open("ab") as output:
            self.process = subprocess.Popen(
                ["mariadbd", f"--defaults-file={self.defaults_file}", *options],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_synced(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = "down"
        while time.monotonic() < deadline:
            if not self.running:
                code = None if self.process is None else reap(self.process)
                raise RuntimeError(self.failure(f"exited (code {code}) before it was Synced"))
            state = self.state()
            if state == "Synced":
                self.last_transfer = self._transfer()
                return
            time.sleep(0.2)
        raise TimeoutError(self.failure(f"not Synced after {timeout:.0f} s (state: {state})"))

    def _transfer(self) -> str:
        """How the node caught up since its last launch, from its error log."""
        try:
            with self.error_log.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return "?"
        # The joiner always prepares the rsync script, which then either copies the data
        # directory or steps aside for IST.
        if "rsync SST completed on joiner" in text:
            return "SST"
        if "rsync IST completed on joiner" in text:
            return "IST"
        # A node that stayed up (cut off, then back) gets IST without the script.
        if "IST received" in text:
            return "IST"
        return "none"

    def recover_position(self, timeout: float = 60) -> str | None:
        """The last transaction this node committed ("<cluster uuid>:<seqno>"), read from
        InnoDB by ``mariadbd --wsrep-recover`` (what Debian's galera_recovery does before every
        start); None when the data directory knows none."""
        options = ["--wsrep-recover", "--disable-log-error"]
        if os.geteuid() == 0:
            options.append("--user=mysql")
        try:
            code, output = run_group(["mariadbd", f"--defaults-file={self.defaults_file}", *options], timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"{self.name}: mariadbd --wsrep-recover still running after {timeout:.0f} s"
            ) from None
        found = re.findall(r"WSREP: Recovered position: (\S+)", output)
        if code != 0 or not found:
            raise RuntimeError(
                f"{self.name}: mariadbd --wsrep-recover failed (code {code}):\n{output[-2000:]}"
            )
        position = found[-1]
        return None if position.endswith(":-1") else position

    def start(self, timeout: float = 90) -> float:
        """(Re)start the node and wait until it is Synced; the seconds that took. Works after
        stop() and after kill(). A clean stop writes the node's position to grastate.dat; a
        killed node leaves seqno -1 there, and a plain restart then copies everything again
        (full SST), so its position is first recovered from InnoDB and passed on. Either way
        the node catches up by IST while the cluster's cache (gcache) still holds what it
        missed; ``last_transfer`` says which transfer it got."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.process.pid})")
        started = time.monotonic()
        options = []
        grastate = self.datadir / "grastate.dat"
        if grastate.exists() and re.search(r"^seqno:\s*-1\s*$", grastate.read_text(), re.M):
            position = self.recover_position(timeout)
            if position is not None:
                options.append(f"--wsrep-start-position={position}")
        self.launch(*options)
        self.wait_synced(timeout - (time.monotonic() - started))
        return time.monotonic() - started

    def kill(self) -> None:
        """A crash: SIGKILL to mariadbd (and to an SST helper it may have running)."""
        if self.process is None:
            return
        reap(self.process)

    def isolate(self, isolated: bool = True) -> None:
        """Cut the node off from its peers without stopping it, or end that (``False``): Galera's
        gmcast.isolate drops all group traffic to and from the node, as a network partition
        would. The node goes on answering SQL clients; once the others drop it from the group
        (evs.suspect_timeout, LAN_TIMEOUTS) it is a component of its own, non-Primary, that
        refuses the application's queries. Healed, it rejoins and catches up by IST (then
        wait_synced() tells ``last_transfer``)."""
        if not isolated:
            self._log_offset = self.error_log.stat().st_size
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(f"SET GLOBAL wsrep_provider_options = 'gmcast.isolate={int(isolated)}'")

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """A clean shutdown: SIGTERM, wait (SIGKILL after ``timeout`` s)."""
        if self.process is not None:
            end(self.process, timeout)


class Cluster:
    """Three nodes and, on demand, HAProxy. ``root`` is where their files go: a new temporary
    directory when None; stop() removes the directory if it created it."""

    def __init__(self, base_port: int = 23306, root: Path | None = None, keep: bool = False):
        if not 7 <= base_port <= 65535 - 1030:
            raise ValueError(f"base port {base_port} leaves no room for the port layout")
        self.base_port = base_port
        self.root: Path | None = Path(root) if root is not None else None
        self.keep = keep  # leave the files in place at stop() (to read the logs)
        self._created_root = False
        self.nodes = [
            Node(
                index=i,
                port=base_port + i - 1,
                galera_port=base_port + 1000 + 10 * (i - 1),
                sst_port=base_port + 1000 + 10 * (i - 1) + 2,
                cluster=self,
            )
            for i in (1, 2, 3)
        ]
        self.haproxy: subprocess.Popen | None = None
        self.haproxy_port = base_port - 6

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def haproxy_log(self) -> Path:
        return self.root / "haproxy.log"

    def node(self, name_or_port: str | int) -> Node:
        for node in self.nodes:
            if name_or_port in (node.name, node.port):
                return node
        raise KeyError(name_or_port)

    # --- the nodes ---------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> None:
        """Install node 1, bootstrap the cluster on it, start nodes 2 and 3 together (they join
        by SST), wait until all three are Synced, then create HAProxy's check user. On failure
        everything started is stopped again and the error says why."""
        deadline = time.monotonic() + timeout
        try:
            self._prepare()
            first, *others = self.nodes
            install = [
                "mariadb-install-db",
                f"--defaults-file={first.defaults_file}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]
            try:
                code, output = run_group(install, max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                raise TimeoutError(first.failure(f"not installed after {timeout:.0f} s")) from None
            if code != 0:
                raise RuntimeError(f"mariadb-install-db failed (code {code}):\n{output}")
            first.launch("--wsrep-new-cluster")
            first.wait_synced(deadline - time.monotonic())
            for node in others:
                # Only node 1 has data yet: both copy it at once instead of one waiting for
                # the other, its preferred donor.
                node.launch(f"--wsrep-sst-donor={first.name},")
            for node in others:
                node.wait_synced(deadline - time.monotonic())
            self.wait_synced(deadline - time.monotonic())
            with first.connect() as connection, connection.cursor() as cursor:
                # HAProxy's health check logs in as this user: no password, no privilege.
                cursor.execute("CREATE USER IF NOT EXISTS 'haproxy'@'127.0.0.1'")
        except BaseException:
            self.stop()
            raise

    def _prepare(self) -> None:
        missing = [program for program in PROGRAMS if shutil.which(program) is None]
        if missing or not PROVIDER.exists():
            raise RuntimeError(
                f"missing: {', '.join(missing + ([] if PROVIDER.exists() else [str(PROVIDER)]))} "
                "(apt-get install galera-4 mariadb-server rsync haproxy, or `make cluster`)"
            )
        taken = [
            f"{node.name} {kind} {port}"
            for node in self.nodes
            for kind, port in node.ports.items()
            if port_in_use(port)
        ]
        if taken:
            raise RuntimeError(
                f"ports in use on 127.0.0.1: {', '.join(taken)} (another cluster on base port "
                f"{self.base_port}? choose another base port)"
            )
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="galera-"))
            self._created_root = True
        elif not self.root.exists():
            self.root.mkdir(parents=True)
            self._created_root = True
        # mariadbd runs as mysql: it must be able to reach its directory from /.
        self.root.chmod(0o755)
        for node in self.nodes:
            node.datadir.mkdir(parents=True)
            node.defaults_file.write_text(node.defaults())
        if os.geteuid() == 0:
            for node in self.nodes:
                for path in (node.dir, node.datadir, node.defaults_file):
                    shutil.chown(path, "mysql", "mysql")

    @property
    def running(self) -> list[Node]:
        return [node for node in self.nodes if node.running]

    def wait_synced(self, timeout: float = 90) -> None:
        """Every running node Synced, each seeing a cluster of exactly the running nodes."""
        deadline = time.monotonic() + timeout
        while True:
            running = self.running
            statuses = {node.name: node.status() for node in running}
            views = {
                name: (status.get("wsrep_local_state_comment", "down"), status.get("wsrep_cluster_size"))
                for name, status in statuses.items()
            }
            if all(view == ("Synced", str(len(running))) for view in views.values()):
                return
            if time.monotonic() > deadline:
                lagging = next(node for node in running if views[node.name] != ("Synced", str(len(running))))
                raise TimeoutError(
                    lagging.failure(
                        f"not Synced in a cluster of {len(running)} after {timeout:.0f} s "
                        f"(state, size per node: {views})"
                    )
                )
            time.sleep(0.2)

    def create_database(self, name: str) -> str:
        with self.running[0].connect() as connection, connection.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        return name

    def stop(self) -> None:
        """Stop HAProxy and every node (SIGTERM, SIGKILL to what is left after STOP_SECONDS;
        a node not Synced yet is killed at once, as it would ignore SIGTERM until its state
        transfer ends), then remove the directory if this cluster created it. Safe to call at
        any point, and again."""
        self.stop_haproxy()
        deadline = time.monotonic() + STOP_SECONDS
        for node in self.running:
            if node.state() == "Synced":
                node.process.send_signal(signal.SIGTERM)
            else:  # joining (it would ignore SIGTERM until its transfer ends) or broken
                node.kill()
        for node in self.nodes:
            node.stop(max(deadline - time.monotonic(), 0))
        if self.root is not None and self._created_root and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            self._created_root = False

    # --- HAProxy -------------------------------------------------------------------------------

    def haproxy_environment(self, port: int) -> dict[str, str]:
        """What docker/haproxy/haproxy.cfg reads from the environment, for this cluster."""
        return {
            "GALERA_LISTEN": f"127.0.0.1:{port}",
            **{f"GALERA_NODE{node.index}": f"127.0.0.1:{node.port}" for node in self.nodes},
        }

    def start_haproxy(self, port: int | None = None, timeout: float = 20) -> int:
        """HAProxy on the shipped config; waits until a connection through it reaches a Synced
        node. Its port."""
        if alive(self.haproxy):
            raise RuntimeError(f"haproxy is already running on port {self.haproxy_port}")
        self.haproxy_port = port = port or self.haproxy_port
        if port_in_use(port):
            raise RuntimeError(f"haproxy cannot start: port {port} in use on 127.0.0.1")
        with self.haproxy_log.open("ab") as output:
            self.haproxy = subprocess.Popen(
                ["haproxy", "-db", "-f", str(HAPROXY_CFG)],
                env={**os.environ, **self.haproxy_environment(port)},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if not alive(self.haproxy):
                raise RuntimeError(
                    f"haproxy exited (code {reap(self.haproxy)}); {self.haproxy_log}:\n"
                    f"{tail(self.haproxy_log)}"
                )
            try:
                with self.connect_haproxy() as connection, connection.cursor() as cursor:
                    cursor.execute("SHOW STATUS LIKE 'wsrep_local_state_comment'")
                    if cursor.fetchone()[1] == "Synced":
                        return port
            except pymysql.Error:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no Synced node through haproxy on port {port} after {timeout:.0f} s; "
                    f"{self.haproxy_log}:\n{tail(self.haproxy_log)}"
                )
            time.sleep(0.2)

    def stop_haproxy(self) -> None:
        if self.haproxy is not None:
            end(self.haproxy, 10)
            self.haproxy = None

    def haproxy_url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.haproxy_port}/{database}"

    def connect_haproxy(self, database: str | None = None, **options) -> pymysql.Connection:
        """A new connection through HAProxy as root (autocommit unless told otherwise)."""
        return connect(self.haproxy_port, database, **options)

    def haproxy_backend(self) -> str:
        """The node HAProxy gives a new connection now ("node1", ...)."""
        with self.connect_haproxy() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT @@port")
            return self.node(cursor.fetchone()[0]).name


# --- by hand -------------------------------------------------------------------------------------


def _watch(cluster: Cluster, say: Callable[[str], None]) -> None:
    """Until interrupted: report each node's state when it changes (a node killed or stopped
    from another shell, a desync...)."""
    last: dict[str, str] = {}
    while True:
        for node in cluster.nodes:
            state = node.state() if node.running else "exited"
            if last.get(node.name) not in (None, state):
                say(f"{node.name}: {last[node.name]} -> {state}")
            last[node.name] = state
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster.galera",
        description="A three-node MariaDB Galera cluster with HAProxy in front, on 127.0.0.1, "
        "from docker/galera/galera.cnf and docker/haproxy/haproxy.cfg.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser(
        "up",
        help="start the cluster and HAProxy, print the addresses, stop everything on Ctrl-C or SIGTERM",
    )
    up.add_argument("--base-port", type=int, default=23306, help="node 1's SQL port (default 23306)")
    up.add_argument("--haproxy-port", type=int, help="default: base port - 6")
    up.add_argument("--database", default="webapp", help="database to create (default webapp)")
    up.add_argument("--dir", type=Path, help="where the files go (default: a new temporary directory)")
    up.add_argument("--keep", action="store_true", help="leave the files in place when stopping")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(f"[cluster] {text}", flush=True)

    # SIGTERM unwinds like Ctrl-C: the finally below stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cluster = Cluster(args.base_port, args.dir, keep=args.keep)
    try:
        started = time.monotonic()
        cluster.start()
        say(f"3 nodes Synced in {time.monotonic() - started:.1f} s; files under {cluster.root}")
        cluster.start_haproxy(args.haproxy_port)
        database = cluster.create_database(args.database)
        for node in cluster.nodes:
            say(f"{node.name}: {node.url(database)}  (Galera {node.galera_port}, log {node.error_log})")
        say(f"haproxy: {cluster.haproxy_url(database)}  (now on {cluster.haproxy_backend()})")
        say(f"e.g. DATABASE_URL={cluster.haproxy_url(database)} make run")
        say("Ctrl-C or SIGTERM stops everything")
        _watch(cluster, say)
    except KeyboardInterrupt:
        pass
    finally:
        say("stopping")
        cluster.stop()
        say("stopped" + (f"; files kept in {cluster.root}" if args.keep and cluster.root else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
