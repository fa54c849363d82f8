"""What each database needs beyond SQL: engine and driver settings, the hooks run on new
connections (SQLite's pragmas, a Galera node's session), the MySQL errors that mean "retry" or
"this node cannot serve", an upsert in each dialect's syntax, and the SQL text of a MySQL bulk
load."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pymysql import converters as pymysql_converters
from pymysql.constants import FIELD_TYPE
from pymysql.converters import escape_string
from sqlalchemy import Connection
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

# MySQL/MariaDB errors meaning "this transaction lost to another one; run it again": a
# deadlock (also how Galera reports a failed certification) and a lock wait timeout.
CONFLICT_ERRORS = {1213, 1205}


def is_conflict(error: BaseException) -> bool:
    """Whether ``error`` is a transaction that lost a conflict (worth retrying as a whole):
    also a versioned row that another transaction changed between this one's read and write."""
    if isinstance(error, StaleDataError):
        return True
    if not isinstance(error, OperationalError):
        return False
    args = getattr(error.orig, "args", ())
    return bool(args) and args[0] in CONFLICT_ERRORS


# A statement the server stopped at its time limit (bounded_statements): MariaDB's
# max_statement_time, MySQL's MAX_EXECUTION_TIME.
STATEMENT_TIMEOUT_ERRORS = {1969, 3024}


def is_statement_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a statement the server stopped at its time limit."""
    original = error.orig if isinstance(error, DBAPIError) else error
    args = getattr(original, "args", ())
    return bool(args) and args[0] in STATEMENT_TIMEOUT_ERRORS


# The execution option that marks a statement to be bounded (webapp/pages.py sets it on
# every list query): a scan that would run longer is stopped by the server itself, which a
# client-side read timeout does not do (the server would go on scanning for nobody).
BOUNDED = "bounded"


def bounded_statements(conn, cursor, statement, parameters, context, executemany, *, seconds: float):
    """The before_cursor_execute listener (retval=True) that puts a server-side time limit on
    statements run with the ``bounded`` execution option, on MariaDB and MySQL."""
    if context is None or not context.execution_options.get(BOUNDED) or seconds <= 0:
        return statement, parameters
    if conn.dialect.is_mariadb:
        return f"SET STATEMENT max_statement_time={seconds:g} FOR {statement}", parameters
    return statement.replace(
        "SELECT", f"SELECT /*+ MAX_EXECUTION_TIME({int(seconds * 1000)}) */", 1
    ), parameters


# The error a Galera node answers while it cannot serve the app: cut off from the cluster's
# primary component (non-Primary), or still joining. 1047, "WSREP has not yet prepared node
# for application use", to every statement that reads or writes a table, and to COMMIT and
# ROLLBACK as well.
NODE_NOT_READY_ERRORS = {1047}


def is_node_not_ready(error: BaseException) -> bool:
    """Whether ``error`` (a DBAPI error, raw or wrapped by SQLAlchemy) says the database node
    cannot serve the app now, as a Galera node outside the primary component says."""
    original = error.orig if isinstance(error, DBAPIError) else error
    args = getattr(original, "args", ())
    return bool(args) and args[0] in NODE_NOT_READY_ERRORS


def drop_connections_of_unready_nodes(context: ExceptionContext) -> None:
    """The engine's handle_error listener: a connection whose node answered "not ready" is
    closed (SQLAlchemy treats the error as a disconnect), not handed back to the pool.

    Such a node refuses even ROLLBACK: the failed request's transaction, its writes included,
    would stay open on the connection, and the next request to commit on it once the node
    rejoins would commit them too. Closing the connection ends that transaction on the server,
    and the rollbacks SQLAlchemy then runs have nothing to send. Only that connection goes:
    the others are tried (and dropped) in turn, and work again once the node is back.
    """
    if is_node_not_ready(context.original_exception):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False


def _parse_datetime(value: str) -> datetime | str:
    """DATETIME text to datetime with CPython's C parser; PyMySQL's own, in pure Python, is
    the largest cost of reading a page of rows. Odd values (zero dates) keep its behaviour."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return pymysql_converters.convert_datetime(value)


PYMYSQL_CONVERSIONS = {
    **pymysql_converters.conversions,
    FIELD_TYPE.DATETIME: _parse_datetime,
    FIELD_TYPE.TIMESTAMP: _parse_datetime,
}


def engine_options(url: str, connect_timeout: int, query_timeout: int = 10) -> dict:
    """Pool and driver settings for the database behind ``url``."""
    if url.startswith("sqlite"):
        # Workers are separate processes: wait for the write lock instead of failing.
        return {"connect_args": {"timeout": 15}}
    if url.startswith("mysql") or url.startswith("mariadb"):
        return {
            "pool_pre_ping": True,  # a connection the server dropped is replaced, not used
            "pool_recycle": 280,
            # Every connection comes back with its transaction already rolled back (the
            # session closes it first), so the pool's own reset would only repeat the ROLLBACK:
            # a wasted round trip per request.
            "pool_reset_on_return": None,
            # Each statement sees what other transactions committed before it (as on
            # PostgreSQL); the session cap and token rotation rely on that.
            "isolation_level": "READ COMMITTED",
            "connect_args": {
                "charset": "utf8mb4",
                "connect_timeout": connect_timeout,
                "read_timeout": query_timeout,
                "write_timeout": query_timeout,
                "conv": PYMYSQL_CONVERSIONS,
            },
        }
    return {"pool_pre_ping": True}


# The session variable holding the Galera node's index, for the count triggers
# (webapp/models/row_count.py) to pick that node's counter rows.
NODE_VARIABLE = "webapp_node"


def galera_session(dbapi_connection, record, *, sync_wait: int) -> None:
    """On a new MySQL connection, find out whether it reached a Galera node; if so, note the
    node's index (``node_index``, and the session variable the count triggers read) and make
    its reads wait for every write the cluster has acknowledged (``wsrep_sync_wait``), so a
    client reads its own writes made through any node.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_local_index')")
        status = dict(cursor.fetchall())
        if status.get("wsrep_ready") != "ON":
            return
        record.info["galera_node"] = node = int(status["wsrep_local_index"])
        cursor.execute(f"SET SESSION wsrep_sync_wait = %s, @{NODE_VARIABLE} = %s", (sync_wait, node))
    finally:
        cursor.close()


# The session variable a bulk loader sets: the per-row triggers (counts, word index) then do
# nothing, and the loader does their work for each batch in bulk (webapp/fake.py).
BULK_VARIABLE = "webapp_bulk_load"


@contextmanager
def bulk_load(connection: Connection) -> Iterator[bool]:
    """Turn ``connection``'s per-row triggers off while the block runs, on MySQL/MariaDB
    (SQLite's triggers cannot read a session setting): yields whether they are off."""
    if connection.dialect.name not in ("mysql", "mariadb"):
        yield False
        return
    connection.exec_driver_sql(f"SET @{BULK_VARIABLE} = 1")
    try:
        yield True
    finally:
        connection.exec_driver_sql(f"SET @{BULK_VARIABLE} = NULL")


def node_index(connection: Connection) -> int:
    """The index of the Galera node behind ``connection`` when it connected (0 elsewhere)."""
    return connection.info.get("galera_node", 0)


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """Enforce foreign keys and let readers work beside the writer (WAL)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def add_to_counters(connection: Connection, model: type, rows: list[dict], column: str) -> None:
    """Insert ``rows`` into ``model``'s table; where a row's key exists, add its ``column``
    instead. One atomic statement, so concurrent writers never lose an increment."""
    table = model.__table__
    if connection.dialect.name in ("mysql", "mariadb"):
        statement = mysql_insert(table).values(rows)
        statement = statement.on_duplicate_key_update({column: table.c[column] + statement.inserted[column]})
    else:
        statement = sqlite_insert(table).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=list(table.primary_key.columns),
            set_={column: table.c[column] + statement.excluded[column]},
        )
    connection.execute(statement)


def sql_literal(value) -> str:
    """A value as MySQL text: a bulk loader writes its statements itself (the driver's
    per-value escaping would be most of a load's time)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=' ')}'"
    if value is None:
        return "NULL"
    return f"'{escape_string(value)}'"


def insert_ignore_sql(table: str, rows: list[dict]) -> str:
    """One multi-row INSERT IGNORE of ``rows`` into ``table`` (MySQL); a timestamp shared by
    every row is written out once."""
    columns = list(rows[0])
    shared = {
        column: sql_literal(rows[0][column]) for column in columns if isinstance(rows[0][column], datetime)
    }
    values = ",".join(
        "(" + ",".join(shared.get(column) or sql_literal(row[column]) for column in columns) + ")"
        for row in rows
    )
    # Each string value escaped: nothing in them can end the statement.
    return f"INSERT IGNORE INTO {table} ({', '.join(columns)}) VALUES {values}"  # noqa: S608  # nosec B608
