"""The Galera topology of compose.cluster.yml, natively and from the same files (`make
cluster`): three nodes replicating, HAProxy's health check following each node's Galera state
with one sticky writer, a killed node rejoining by IST, and the shipped files (galera.cnf,
haproxy.cfg and its opaque check bytes, the compose file, the node entrypoint) checked
against what runs here. No app involved."""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pymysql
import pytest

from tests.cluster.galera import GALERA_CNF, HAPROXY_CFG, LAN_TIMEOUTS, ROOT, Cluster
from tests.compose_files import load_compose, merge

GALERA_DIR = ROOT / "docker" / "galera"
ENTRYPOINT = GALERA_DIR / "entrypoint.sh"
NODES = ("galera1", "galera2", "galera3")


def waited(check, timeout: float, what: str):
    """Poll ``check`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def shared_settings() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read_string(GALERA_CNF.read_text())
    return dict(parser["mariadb"])


# --- the health check's bytes ----------------------------------------------------------------

CLIENT_LONG_PASSWORD = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000


def check_steps() -> list[tuple[str, bytes]]:
    """haproxy.cfg's tcp-check send-binary / expect binary lines, in order, decoded."""
    steps = []
    for line in HAPROXY_CFG.read_text().splitlines():
        match = re.fullmatch(r"\s*tcp-check (send-binary|expect binary) ([0-9a-f]+)", line)
        if match:
            steps.append((match[1].split()[0].split("-")[0], bytes.fromhex(match[2])))
    return steps


def mysql_packets(data: bytes) -> list[tuple[int, bytes]]:
    """(sequence number, payload) of each MySQL protocol packet in ``data``."""
    packets = []
    while data:
        length, sequence = int.from_bytes(data[:3], "little"), data[3]
        payload, data = data[4 : 4 + length], data[4 + length :]
        assert len(payload) == length, "truncated packet"
        packets.append((sequence, payload))
    return packets


def length_encoded(text: str) -> bytes:
    return bytes([len(text)]) + text.encode()


def test_the_health_check_bytes_are_a_login_as_haproxy_and_a_wsrep_state_query():
    steps = check_steps()
    assert [kind for kind, _ in steps] == ["send", "expect", "send", "expect"]
    (_, login), (_, ok), (_, query), (_, expected) = steps

    # HandshakeResponse41, the client's second packet (the server's greeting was number 0).
    [(sequence, payload)] = mysql_packets(login)
    assert sequence == 1
    capabilities = int.from_bytes(payload[:4], "little")
    assert capabilities == CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION
    for absent in (CLIENT_CONNECT_WITH_DB, CLIENT_SSL, CLIENT_PLUGIN_AUTH):
        assert not capabilities & absent
    assert int.from_bytes(payload[4:8], "little") == 16 * 1024 * 1024  # max packet size
    assert payload[8] == 33  # utf8_general_ci
    assert payload[9:32] == bytes(23)
    user, auth = payload[32:].split(b"\0", 1)
    assert user == b"haproxy"
    assert auth == b"\x00"  # an auth response of length 0: the empty password, nothing after

    # The OK packet: header 0x00, 0 rows, insert id 0, status AUTOCOMMIT, 0 warnings.
    assert mysql_packets(ok) == [(2, b"\x00\x00\x00\x02\x00\x00\x00")]

    # COM_QUERY then COM_QUIT, each a new command (sequence 0).
    assert mysql_packets(query) == [
        (0, b"\x03SHOW STATUS LIKE 'wsrep_local_state_comment'"),
        (0, b"\x01"),
    ]

    # The value column of the row: "Synced" as a length-encoded string; no other state matches.
    assert expected == length_encoded("Synced")
    for state in ("Joining", "Joining: receiving State Transfer", "Joined", "Donor/Desynced", "Initialized"):
        assert expected not in length_encoded(state)
    print(
        f"\n[cluster] health check decoded: login as {user.decode()!r} with an empty password, "
        f"{mysql_packets(query)[0][1][1:].decode()!r} + COM_QUIT, expects {expected[1:].decode()!r}"
    )


# --- the compose file --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    """compose.yml with compose.cluster.yml merged in, as `docker compose -f compose.yml -f
    compose.cluster.yml` sees them."""
    return merge(load_compose(ROOT / "compose.yml"), load_compose(ROOT / "compose.cluster.yml"))


def test_compose_replaces_mysql_by_haproxy_on_the_shipped_config(compose):
    services = compose["services"]
    assert set(services) == {"db", "app", "certs", "nginx", "prometheus", "grafana", *NODES}
    db = services["db"]
    assert db["image"] == "haproxy:2.6.32"
    assert "command" not in db  # the image's: haproxy -f /usr/local/etc/haproxy/haproxy.cfg
    assert db["volumes"] == ["./docker/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]
    # Exactly the variables haproxy.cfg reads, nothing of MySQL's left.
    assert db["environment"] == {
        "GALERA_LISTEN": ":3306",
        **{f"GALERA_NODE{i}": f"galera{i}:3306" for i in (1, 2, 3)},
    }
    assert set(re.findall(r"\$\{(\w+)\}", HAPROXY_CFG.read_text())) == set(db["environment"])
    assert set(db["healthcheck"]) == {"test", "interval", "timeout", "retries"}
    assert "mysqladmin" not in db["healthcheck"]["test"]
    assert db["depends_on"] == {name: {"condition": "service_healthy"} for name in NODES}
    assert db["networks"] == ["default", "galera"]
    # The app reaches the cluster at the address it always used, once HAProxy is healthy.
    assert "@db:3306/webapp" in services["app"]["environment"]["DATABASE_URL"]
    assert services["app"]["depends_on"]["db"] == {"condition": "service_healthy"}
    # The nodes are on their own network only.
    assert compose["networks"]["galera"]["internal"] is True
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx", "prometheus", "grafana"}  # the cluster adds none


def test_compose_nodes_run_the_shared_galera_cnf_and_the_native_per_node_settings(compose):
    services, mysql = compose["services"], load_compose(ROOT / "compose.yml")["services"]["db"]
    native = Cluster()  # only for its per-node settings: nothing is started
    shared = shared_settings()
    dockerfiles = set()
    for index, name in enumerate(NODES, 1):
        node = services[name]
        assert node["build"]["context"] == "."
        dockerfiles.add(node["build"]["dockerfile"])
        options = dict(argument.removeprefix("--").split("=", 1) for argument in node["command"])
        assert options == {
            "wsrep-node-name": name,
            "wsrep-cluster-address": "gcomm://galera1,galera2,galera3",
            "wsrep-sst-donor": native.nodes[index - 1].donors().replace("node", "galera"),
            "wsrep-provider-options": LAN_TIMEOUTS,
        }
        assert not {option.replace("-", "_") for option in options} & set(shared), "galera.cnf's job"
        assert f"{name}-data:/var/lib/mysql" in node["volumes"]
        assert node["healthcheck"]["test"] == [
            "CMD",
            "healthcheck.sh",
            "--su-mysql",
            "--connect",
            "--galera_online",
        ]
        assert "MARIADB_AUTO_UPGRADE" not in node.get("environment", {})
        if index > 1:
            assert node["depends_on"] == {"galera1": {"condition": "service_healthy"}}
            assert "GALERA_BOOTSTRAP" not in node.get("environment", {})
    assert dockerfiles == {"docker/galera/Dockerfile"}
    dockerfile = (ROOT / "docker" / "galera" / "Dockerfile").read_text()
    assert re.search(r"^FROM mariadb:10\.11\.\d+$", dockerfile, re.M)
    assert re.search(r"^COPY docker/galera/galera\.cnf /etc/mysql/conf\.d/galera\.cnf$", dockerfile, re.M)
    assert re.search(r"^COPY docker/galera/entrypoint\.sh (\S+)$", dockerfile, re.M)
    assert 'ENTRYPOINT ["galera-entrypoint.sh"]' in dockerfile
    assert os.access(ENTRYPOINT, os.X_OK)

    # galera1 initialises the database with compose.yml's values and bootstraps.
    env = services["galera1"]["environment"]
    assert env["GALERA_BOOTSTRAP"] == "1"
    for name in ("DATABASE", "USER", "PASSWORD", "ROOT_PASSWORD"):
        assert env[f"MARIADB_{name}"] == mysql["environment"][f"MYSQL_{name}"]
    assert env["MARIADB_MYSQL_LOCALHOST_USER"] == "1"  # the nodes' health check account

    # HAProxy's check user, created by galera1's init script, for the nodes' network only.
    mounted = {
        target: source for source, target, *_ in (v.split(":") for v in services["galera1"]["volumes"])
    }
    script = mounted["/docker-entrypoint-initdb.d/haproxy-user.sql"]
    statements = [
        line for line in (ROOT / script).read_text().splitlines() if line and not line.startswith("--")
    ]
    [statement] = statements
    match = re.fullmatch(r"CREATE USER IF NOT EXISTS 'haproxy'@'([\d.]+)/([\d.]+)';", statement)
    assert match, statement  # no IDENTIFIED: the empty password the check sends
    subnet = compose["networks"]["galera"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_network(f"{match[1]}/{match[2]}") == ipaddress.ip_network(subnet)

    # Every repository file compose mounts exists.
    for service in services.values():
        for volume in service.get("volumes", []):
            if volume.startswith("."):
                assert (ROOT / volume.split(":")[0]).exists(), volume


# --- the node entrypoint of the containers -------------------------------------------------------


def run_entrypoint(tmp_path: Path, defaults: Path, **env: str) -> list[str]:
    """docker/galera/entrypoint.sh with the image's docker-entrypoint.sh replaced by a stub
    that records its arguments; those arguments."""
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir(exist_ok=True)
    stub = stub_dir / "docker-entrypoint.sh"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGUMENTS"\n')
    stub.chmod(0o755)
    arguments = tmp_path / "arguments"
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), f"--defaults-file={defaults}", "--wsrep-node-name=x"],
        env={**os.environ, "PATH": f"{stub_dir}:{os.environ['PATH']}", "ARGUMENTS": str(arguments), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return arguments.read_text().splitlines()


def test_the_node_entrypoint_bootstraps_only_node1_on_new_or_safe_data_and_no_peer(tmp_path):
    datadir = tmp_path / "data"
    datadir.mkdir()
    defaults = tmp_path / "my.cnf"
    base = ["mariadbd", f"--defaults-file={defaults}", "--wsrep-node-name=x"]
    bootstrap = [*base, "--wsrep-new-cluster"]
    with socket.socket() as peer, socket.socket() as gone:
        peer.bind(("127.0.0.1", 0))
        peer.listen()
        gone.bind(("127.0.0.1", 0))  # bound, not listening: refuses connections
        nobody = f"gcomm://127.0.0.1:{gone.getsockname()[1]}"
        somebody = f"{nobody},127.0.0.1:{peer.getsockname()[1]}"

        def entrypoint(cluster_address: str, **env: str) -> list[str]:
            defaults.write_text(
                f"[mariadb]\ndatadir = {datadir}\nwsrep_cluster_address = {cluster_address}\n"
            )
            return run_entrypoint(tmp_path, defaults, **env)

        # New data directory: node 1 bootstraps (the image's entrypoint initialises it first)...
        assert entrypoint(nobody, GALERA_BOOTSTRAP="1") == bootstrap
        assert not (datadir / "mysql").exists()
        # ...unless another node answers: then it joins, and skips initialisation like the
        # others, which wait for SST.
        assert entrypoint(somebody, GALERA_BOOTSTRAP="1") == base
        assert (datadir / "mysql").is_dir()
        assert entrypoint(nobody) == base

        # Existing data: node 1 bootstraps again only if it was the last node to stop (no
        # grastate.dat counts as safe, as for Galera), and no other node answers.
        assert entrypoint(nobody, GALERA_BOOTSTRAP="1") == bootstrap
        grastate = datadir / "grastate.dat"
        grastate.write_text(
            "# GALERA saved state\nversion: 2.1\nuuid: 1b6e3ee2-5c9a-11f1-a6c4-6e2f1c0b7d55\n"
            "seqno: 42\nsafe_to_bootstrap: 1\n"
        )
        assert entrypoint(nobody, GALERA_BOOTSTRAP="1") == bootstrap
        assert entrypoint(somebody, GALERA_BOOTSTRAP="1") == base
        assert entrypoint(nobody) == base
        grastate.write_text(grastate.read_text().replace("safe_to_bootstrap: 1", "safe_to_bootstrap: 0"))
        assert entrypoint(nobody, GALERA_BOOTSTRAP="1") == base


# --- the running cluster ----------------------------------------------------------------------


def test_three_synced_members_and_a_write_on_node1_is_read_on_the_others(settled):
    cluster = settled
    for node in cluster.nodes:
        status = node.status()
        assert status["wsrep_local_state_comment"] == "Synced", node.name
        assert status["wsrep_cluster_size"] == "3", node.name
        assert status["wsrep_cluster_status"] == "Primary", node.name
        assert status["wsrep_ready"] == "ON", node.name
    members = cluster.nodes[0].status()["wsrep_incoming_addresses"].split(",")
    assert sorted(members) == sorted(f"127.0.0.1:{node.port}" for node in cluster.nodes)

    database = cluster.create_database("topology")
    body = uuid.uuid4().hex
    with cluster.nodes[0].connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(64) NOT NULL)")
        cursor.execute("INSERT INTO notes (body) VALUES (%s)", (body,))
        written = cursor.lastrowid
    for node in cluster.nodes[1:]:
        with node.connect(database) as connection, connection.cursor() as cursor:
            # A causal read: waits until this node applied what the cluster committed before.
            cursor.execute("SET SESSION wsrep_sync_wait = 1")
            cursor.execute("SELECT body FROM notes WHERE id = %s", (written,))
            assert cursor.fetchone() == (body,), node.name
            cursor.execute(
                "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                (database,),
            )
            assert cursor.fetchone() == ("utf8mb4_bin",)


def test_every_node_runs_the_shared_galera_cnf(cluster):
    shared = shared_settings()
    assert shared["wsrep_on"] == "ON"
    for node in cluster.nodes:
        first, *own = node.defaults_file.read_text().splitlines()
        assert first == f"!include {ROOT / 'docker' / 'galera' / 'galera.cnf'}"
        own_keys = {line.split("=")[0].strip() for line in own if "=" in line}
        assert not own_keys & set(shared), "a node overrides a shared setting"
        with node.connect() as connection, connection.cursor() as cursor:
            for key, value in shared.items():
                cursor.execute(f"SELECT @@GLOBAL.{key}")
                actual = str(cursor.fetchone()[0]).upper()
                assert actual == {"ON": "1", "OFF": "0"}.get(value.upper(), value.upper()), (node.name, key)


def test_haproxy_accepts_the_shipped_config_and_runs_it(cluster):
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(HAPROXY_CFG)],
        env={**os.environ, **cluster.haproxy_environment(cluster.haproxy_port)},
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0
    assert "Configuration file is valid" in result.stdout
    running = Path(f"/proc/{cluster.haproxy.pid}/cmdline").read_bytes().split(b"\0")
    assert str(HAPROXY_CFG).encode() in running


def test_the_compose_health_check_of_haproxy_works(cluster, compose):
    """The db service's health check, run here against the native HAProxy."""
    kind, shell, flag, script = compose["services"]["db"]["healthcheck"]["test"]
    assert (kind, shell, flag) == ("CMD", "bash", "-c")
    script = script.replace("$$", "$")  # Compose's escape for a literal $
    assert "/127.0.0.1/3306" in script
    native = script.replace("/127.0.0.1/3306", f"/127.0.0.1/{cluster.haproxy_port}")
    assert (
        subprocess.run(["bash", "-c", native], capture_output=True, timeout=10, check=False).returncode == 0
    )
    closed = script.replace("/127.0.0.1/3306", f"/127.0.0.1/{cluster.base_port - 5}")
    assert (
        subprocess.run(["bash", "-c", closed], capture_output=True, timeout=10, check=False).returncode != 0
    )


def haproxy_log_since(cluster, offset: int) -> str:
    with cluster.haproxy_log.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


@pytest.fixture
def settled(cluster) -> Cluster:
    """The cluster with its three nodes Synced and HAProxy on node1, whatever ran before (a
    failover leaves HAProxy on a backup: a new HAProxy starts with an empty stick table)."""
    assert len(cluster.running) == 3, "a node was left stopped"
    cluster.wait_synced(60)
    if cluster.haproxy_backend() != "node1":
        cluster.stop_haproxy()
        cluster.start_haproxy()
    assert cluster.haproxy_backend() == "node1"
    return cluster


def moved_off(cluster, node) -> str | None:
    """The node HAProxy gives a new connection, once it is not ``node``. A connection HAProxy
    cuts while it marks ``node`` down (shutdown-sessions) counts as not yet moved."""
    try:
        backend = cluster.haproxy_backend()
    except pymysql.err.OperationalError:
        return None
    return backend if backend != node.name else None


def test_haproxy_follows_galera_state_and_stays_where_it_moved(settled):
    cluster = settled
    writer = cluster.nodes[0]
    offset = cluster.haproxy_log.stat().st_size
    held = cluster.connect_haproxy()  # a client of the writer, through HAProxy
    try:
        with writer.connect() as connection:
            connection.cursor().execute("SET GLOBAL wsrep_desync = ON")
        desynced = time.monotonic()
        assert writer.state() == "Donor/Desynced"
        moved_to = waited(lambda: moved_off(cluster, writer), 10, "failover")
        failover = time.monotonic() - desynced
        print(
            f"\n[cluster] haproxy moved new connections off desynced node1 to {moved_to} in {failover:.2f} s"
        )
        assert moved_to == "node2"  # the first backup
        assert failover < 5
        assert "galera/node1 is DOWN" in haproxy_log_since(cluster, offset)
        # The client of node1 was cut off, so it reconnects (to node2).
        with pytest.raises(pymysql.err.OperationalError):
            held.cursor().execute("SELECT 1")

        with writer.connect() as connection:
            connection.cursor().execute("SET GLOBAL wsrep_desync = OFF")
        resynced = time.monotonic()
        writer.wait_synced(30)
        waited(lambda: "galera/node1 is UP" in haproxy_log_since(cluster, offset), 10, "node1 up in haproxy")
        print(
            f"[cluster] node1 Synced and up in haproxy {time.monotonic() - resynced:.2f} s after the desync "
            f"ended; new connections stay on {moved_to}"
        )
        for _ in range(10):
            assert cluster.haproxy_backend() == moved_to
            time.sleep(0.2)
    finally:
        held.close()
        with writer.connect() as connection:
            connection.cursor().execute("SET GLOBAL wsrep_desync = OFF")
        writer.wait_synced(30)
        # A new HAProxy has an empty stick table: back to node1 for whatever runs next.
        cluster.stop_haproxy()
        cluster.start_haproxy()
    assert cluster.haproxy_backend() == writer.name


def test_a_killed_node_rejoins_by_ist(settled, tmp_path):
    cluster = settled
    node = cluster.nodes[2]  # not HAProxy's
    database = cluster.create_database("topology")
    with node.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS missed (id INT AUTO_INCREMENT PRIMARY KEY, n INT)")
        cursor.execute("SHOW STATUS LIKE 'wsrep_last_committed'")
        committed = cursor.fetchone()[1]
        cursor.execute("SHOW STATUS LIKE 'wsrep_cluster_state_uuid'")
        position = f"{cursor.fetchone()[1]}:{committed}"

    node.kill()
    assert node.state() == "down"
    # A crash leaves no position in grastate.dat: a plain restart would need a full SST.
    assert re.search(r"^seqno:\s+-1$", (node.datadir / "grastate.dat").read_text(), re.M)
    with cluster.nodes[0].connect(database) as connection, connection.cursor() as cursor:
        cursor.executemany("INSERT INTO missed (n) VALUES (%s)", [(n,) for n in range(20)])
    cluster.wait_synced(30)  # the two others, once node3 is out of the cluster

    # The containers' entrypoint recovers the position the node had reached...
    arguments = run_entrypoint(tmp_path, node.defaults_file)
    assert arguments[-1] == f"--wsrep-start-position={position}"
    # ...and so does start(), which then catches up on what it missed.
    seconds = node.start()
    print(
        f"\n[cluster] node3 rejoined by {node.last_transfer} {seconds:.1f} s after SIGKILL (from {position})"
    )
    assert node.last_transfer == "IST"
    cluster.wait_synced(30)
    with node.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SET SESSION wsrep_sync_wait = 1")
        cursor.execute("SELECT COUNT(*) FROM missed")
        assert cursor.fetchone() == (20,)
