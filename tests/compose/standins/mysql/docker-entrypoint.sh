#!/bin/bash
# The official mysql image's entrypoint, as far as compose.yml relies on it, over MariaDB:
# - options alone as the command mean mysqld with those options (compose's `command:`);
# - started as root, it takes ownership of the data and socket directories, then runs itself
#   again as mysql;
# - on an empty data directory it first initialises one: a temporary server, on its socket
#   only (so the health check, over TCP, fails until the real server is up), gets the root
#   password (root@localhost and root@MYSQL_ROOT_HOST, '%' by default), the time zone tables,
#   MYSQL_DATABASE and MYSQL_USER (all privileges on that database alone), then runs
#   /docker-entrypoint-initdb.d/ (*.sh, *.sql, *.sql.gz) and stops;
# - then it becomes the server.
# Not reproduced: the *_FILE variables, MYSQL_ONETIME_PASSWORD and MySQL's own server options.
set -euo pipefail

log() {
	local level=$1
	shift
	printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$level" "$*"
}
note() { log Note "$@"; }
warn() { log Warn "$@" >&2; }
fail() {
	log ERROR "$@" >&2
	exit 1
}

# Whether the server is only asked to print something (help, version, its defaults).
wants_help() {
	local arg
	for arg; do
		case "$arg" in
			-'?' | --help | --print-defaults | -V | --version) return 0 ;;
		esac
	done
	return 1
}

# A setting as the server command "${@:2}" resolves it (option files, then its options), from
# the table that ends its --verbose --help: a line starting with the name (lines of the option
# descriptions above it start with blanks). awk reads to the end: exiting early would kill the
# server with SIGPIPE, a failure under pipefail.
setting() {
	local name=$1
	shift
	"$@" --verbose --help 2>/dev/null | awk -v name="$name" '/^[^ \t]/ && $1 == name && !found { print $2; found = 1 }'
}

# A value made safe inside '...' in SQL: backslashes, quotes and newlines escaped.
sql_string() {
	local value=${1//\\/\\\\}
	value=${value//$'\n'/\\n}
	printf '%s' "${value//\'/\\\'}"
}

# SQL from stdin to the temporary server, as root over its socket; with the root password
# once it is set (in an option file on a pipe, never on a command line).
sql() {
	local password=
	if [ -n "$root_password_set" ]; then
		password=${MYSQL_ROOT_PASSWORD//\\/\\\\}
		password=${password//\"/\\\"}
	fi
	mysql --defaults-extra-file=<(printf '[client]\npassword="%s"\n' "$password") \
		--protocol=socket --socket="$SOCKET" --user=root --comments "$@"
}

verify_minimum_env() {
	if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "$MYSQL_ALLOW_EMPTY_PASSWORD" ] && [ -z "$MYSQL_RANDOM_ROOT_PASSWORD" ]; then
		fail "Database is uninitialized and password option is not specified
    You need to specify one of the following as an environment variable:
    - MYSQL_ROOT_PASSWORD
    - MYSQL_ALLOW_EMPTY_PASSWORD
    - MYSQL_RANDOM_ROOT_PASSWORD"
	fi
	if [ "$MYSQL_USER" = root ]; then
		fail 'MYSQL_USER="root", MYSQL_USER and MYSQL_PASSWORD are for configuring a regular user and cannot be used for the root user
    Remove MYSQL_USER="root" and use one of the following to control the root user password:
    - MYSQL_ROOT_PASSWORD
    - MYSQL_ALLOW_EMPTY_PASSWORD
    - MYSQL_RANDOM_ROOT_PASSWORD'
	fi
	if [ -n "$MYSQL_USER" ] && [ -z "$MYSQL_PASSWORD" ]; then
		warn 'MYSQL_USER specified, but missing MYSQL_PASSWORD; MYSQL_USER will not be created'
	elif [ -z "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
		warn 'MYSQL_PASSWORD specified, but missing MYSQL_USER; MYSQL_PASSWORD will be ignored'
	fi
}

# The temporary server: the real one's options, but no network (clients wait until the
# server they will get is up) and no binary log of what initialisation writes.
start_temporary_server() {
	note "Starting temporary server"
	"$@" --skip-networking --skip-log-bin --socket="$SOCKET" &
	server_pid=$!
	local _
	for _ in {1..30}; do
		if sql <<<'SELECT 1' >/dev/null 2>&1; then
			note "Temporary server started."
			return
		fi
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 1
	done
	fail "Unable to start server."
}

stop_temporary_server() {
	note "Stopping temporary server"
	kill "$server_pid"
	wait "$server_pid"
	note "Temporary server stopped"
}

setup_database() {
	if [ -z "$MYSQL_INITDB_SKIP_TZINFO" ]; then
		mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | sql --database=mysql
	fi
	if [ -n "$MYSQL_RANDOM_ROOT_PASSWORD" ]; then
		MYSQL_ROOT_PASSWORD="$(head -c 24 /dev/urandom | base64)"
		note "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
	fi
	local password root_elsewhere=''
	password="$(sql_string "$MYSQL_ROOT_PASSWORD")"
	if [ "$MYSQL_ROOT_HOST" != localhost ]; then
		root_elsewhere="CREATE USER 'root'@'$MYSQL_ROOT_HOST' IDENTIFIED BY '$password';
			GRANT ALL ON *.* TO 'root'@'$MYSQL_ROOT_HOST' WITH GRANT OPTION;"
	fi
	# mariadb-install-db also makes root@127.0.0.1 and root@::1: MySQL has root@localhost alone.
	sql --database=mysql <<-EOSQL
		SET @@SESSION.SQL_LOG_BIN = 0;
		DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';
		ALTER USER 'root'@'localhost' IDENTIFIED BY '$password';
		$root_elsewhere
	EOSQL
	root_password_set=1

	if [ -n "$MYSQL_DATABASE" ]; then
		note "Creating database ${MYSQL_DATABASE}"
		sql <<<"CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
	fi
	if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
		note "Creating user ${MYSQL_USER}"
		sql <<<"CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY '$(sql_string "$MYSQL_PASSWORD")';"
		if [ -n "$MYSQL_DATABASE" ]; then
			note "Giving user ${MYSQL_USER} access to schema ${MYSQL_DATABASE}"
			# In a GRANT, _ is a wildcard: escaped, the grant names this database alone.
			sql <<<"GRANT ALL ON \`${MYSQL_DATABASE//_/\\_}\`.* TO '$MYSQL_USER'@'%';"
		fi
	fi
}

# /docker-entrypoint-initdb.d/ in name order: SQL runs in MYSQL_DATABASE when there is one;
# an executable script runs, another one is sourced (it sees this script's functions).
run_init_files() {
	local file database=()
	if [ -n "$MYSQL_DATABASE" ]; then
		database=(--database="$MYSQL_DATABASE")
	fi
	for file in /docker-entrypoint-initdb.d/*; do
		case "$file" in
			*.sh)
				if [ -x "$file" ]; then
					note "$0: running $file"
					"$file"
				else
					note "$0: sourcing $file"
					# shellcheck disable=SC1090
					. "$file"
				fi
				;;
			*.sql)
				note "$0: running $file"
				sql "${database[@]}" <"$file"
				;;
			*.sql.gz)
				note "$0: running $file"
				gunzip --stdout "$file" | sql "${database[@]}"
				;;
			*)
				# An empty directory leaves the pattern itself.
				if [ -e "$file" ]; then
					note "$0: ignoring $file"
				fi
				;;
		esac
	done
}

initialise() {
	verify_minimum_env
	note "Initializing database files"
	# The server's own options first, so that these ones win.
	mariadb-install-db "${@:2}" --datadir="$DATADIR" --auth-root-authentication-method=normal \
		--skip-test-db --cross-bootstrap --skip-name-resolve --skip-log-bin >/dev/null
	note "Database files initialized"
	start_temporary_server "$@"
	setup_database
	run_init_files
	stop_temporary_server
	note "MySQL init process done. Ready for start up."
}

if [ $# -eq 0 ] || [ "${1:0:1}" = - ]; then
	set -- mysqld "$@"
fi

if [ "$1" = mysqld ] && ! wants_help "$@"; then
	note "Entrypoint script for MySQL Server (stand-in: $(mysqld --version)) started."
	if ! errors="$("$@" --verbose --help 2>&1 >/dev/null)"; then
		fail "mysqld failed while attempting to check config
    command was: $*
    $errors"
	fi
	DATADIR="$(setting datadir "$@")"
	DATADIR=${DATADIR%/}
	SOCKET="$(setting socket "$@")"
	if [ -z "$DATADIR" ] || [ -z "$SOCKET" ]; then
		fail "could not read datadir and socket from: $* --verbose --help"
	fi

	if [ "$(id -u)" = 0 ]; then
		mkdir -p "$DATADIR" "$(dirname "$SOCKET")"
		# Only what mysql does not own yet: cheaper than chown -R on a large data directory.
		find "$DATADIR" "$(dirname "$SOCKET")" ! -user mysql -exec chown --no-dereference mysql: {} +
		note "Switching to dedicated user 'mysql'"
		exec gosu mysql "${BASH_SOURCE[0]}" "$@"
	fi

	# A data directory with a mysql/ directory (the system tables) is initialised already.
	if [ ! -d "$DATADIR/mysql" ]; then
		: "${MYSQL_ROOT_PASSWORD:=}" "${MYSQL_ALLOW_EMPTY_PASSWORD:=}" "${MYSQL_RANDOM_ROOT_PASSWORD:=}"
		: "${MYSQL_ROOT_HOST:=%}" "${MYSQL_DATABASE:=}" "${MYSQL_USER:=}" "${MYSQL_PASSWORD:=}"
		: "${MYSQL_INITDB_SKIP_TZINFO:=}"
		root_password_set=
		initialise "$@"
	fi
fi

exec "$@"
