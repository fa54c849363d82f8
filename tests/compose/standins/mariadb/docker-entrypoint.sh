#!/bin/bash
# The official mariadb image's entrypoint, as far as compose.cluster.yml and
# docker/galera/entrypoint.sh rely on it:
# - options alone as the command mean mariadbd with those options;
# - started as root, it takes ownership of the data and socket directories, then runs itself
#   again as mysql;
# - a data directory without a mysql/ directory gets initialised first: a temporary server,
#   on its socket only and with Galera off (the health check, over TCP, fails meanwhile), gets
#   the root password (root@localhost and root@MARIADB_ROOT_HOST, '%' by default), the time
#   zone tables, the health check's accounts (healthcheck@127.0.0.1, ::1 and localhost, whose
#   password $DATADIR/.my-healthcheck.cnf holds), mysql@localhost by unix_socket with USAGE
#   alone when MARIADB_MYSQL_LOCALHOST_USER is set, MARIADB_DATABASE and MARIADB_USER (all
#   privileges on that database alone), then runs /docker-entrypoint-initdb.d/ (*.sh, *.sql,
#   *.sql.gz) and stops;
# - then it becomes the server.
# Each MARIADB_ variable may be given by its MYSQL_ name, as the official image allows.
# Not reproduced: the *_FILE and *_HASH variables, replication, MARIADB_AUTO_UPGRADE.
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
		password=${MARIADB_ROOT_PASSWORD//\\/\\\\}
		password=${password//\"/\\\"}
	fi
	mariadb --defaults-extra-file=<(printf '[client]\npassword="%s"\n' "$password") \
		--protocol=socket --socket="$SOCKET" --user=root --comments "$@"
}

# MARIADB_<name>, or else MYSQL_<name> (or the MYSQL_ name given), or else the default given.
mariadb_env() {
	local name=MARIADB_$1 alias=${3:-MYSQL_$1}
	printf -v "$name" '%s' "${!name:-${!alias:-${2:-}}}"
}

load_env() {
	mariadb_env ROOT_PASSWORD
	mariadb_env ALLOW_EMPTY_ROOT_PASSWORD '' MYSQL_ALLOW_EMPTY_PASSWORD
	mariadb_env RANDOM_ROOT_PASSWORD
	mariadb_env ROOT_HOST %
	mariadb_env DATABASE
	mariadb_env USER
	mariadb_env PASSWORD
	mariadb_env INITDB_SKIP_TZINFO
	: "${MARIADB_MYSQL_LOCALHOST_USER:=}" "${MARIADB_MYSQL_LOCALHOST_GRANTS:=}"
	: "${MARIADB_HEALTHCHECK_GRANTS:=USAGE}"
}

verify_minimum_env() {
	if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		fail "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
	fi
	if [ "$MARIADB_USER" = root ]; then
		fail 'MARIADB_USER="root", MARIADB_USER and MARIADB_PASSWORD are for configuring the regular user and cannot be used for the root user
	Remove MARIADB_USER="root" and use one of the following to control the root user password:
	- MARIADB_ROOT_PASSWORD
	- MARIADB_ALLOW_EMPTY_ROOT_PASSWORD
	- MARIADB_RANDOM_ROOT_PASSWORD'
	fi
	if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
		warn 'MARIADB_USER specified, but missing MARIADB_PASSWORD; MARIADB_USER will not be created'
	elif [ -z "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
		warn 'MARIADB_PASSWORD specified, but missing MARIADB_USER; MARIADB_PASSWORD will be ignored'
	fi
}

# The temporary server: the real one's options, but no network (clients wait until the
# server they will get is up), no Galera (initialisation is this node's alone) and no binary
# log of what initialisation writes.
start_temporary_server() {
	note "Starting temporary server"
	"$@" --skip-networking --wsrep-on=OFF --skip-log-bin --socket="$SOCKET" \
		--loose-innodb-buffer-pool-load-at-startup=0 &
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

# The accounts healthcheck.sh logs in with, over TCP (127.0.0.1, ::1) or the socket
# (localhost), and the client option file that gives it their password, readable by mysql
# alone. The password is new on each initialisation and stays in this data directory.
healthcheck_users() {
	local password host
	password="$(head -c 24 /dev/urandom | base64)"
	for host in 127.0.0.1 ::1 localhost; do
		printf "CREATE USER IF NOT EXISTS healthcheck@'%s' IDENTIFIED BY '%s';\n" "$host" "$password"
		printf "GRANT %s ON *.* TO healthcheck@'%s';\n" "$MARIADB_HEALTHCHECK_GRANTS" "$host"
	done
	(
		umask 0077
		printf '[mariadb-client]\nport=%s\nsocket=%s\nuser=healthcheck\npassword=%s\n' \
			"$(setting port "${server[@]}")" "$SOCKET" "$password" >"$DATADIR/.my-healthcheck.cnf"
	)
}

# The accounts: root's, the health check's, mysql@localhost if asked for (no password: the
# socket tells who connects), out of the binary log as the official image keeps them.
secure_accounts() {
	if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		MARIADB_ROOT_PASSWORD="$(head -c 24 /dev/urandom | base64)"
		note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
	fi
	local password root_elsewhere='' mysql_localhost=''
	password="$(sql_string "$MARIADB_ROOT_PASSWORD")"
	if [ "$MARIADB_ROOT_HOST" != localhost ]; then
		root_elsewhere="CREATE USER 'root'@'$MARIADB_ROOT_HOST' IDENTIFIED BY '$password';
			GRANT ALL ON *.* TO 'root'@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;
			GRANT PROXY ON ''@'%' TO 'root'@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;"
	fi
	if [ -n "$MARIADB_MYSQL_LOCALHOST_USER" ]; then
		mysql_localhost="CREATE USER mysql@localhost IDENTIFIED VIA unix_socket;"
		if [ -n "$MARIADB_MYSQL_LOCALHOST_GRANTS" ]; then
			mysql_localhost+="GRANT $MARIADB_MYSQL_LOCALHOST_GRANTS ON *.* TO mysql@localhost;"
		fi
	fi
	note "Securing system users (equivalent to running mysql_secure_installation)"
	# mariadb-install-db also made root@127.0.0.1 and root@::1: root@localhost stays alone.
	sql --database=mysql --binary-mode <<-EOSQL
		SET @@SESSION.SQL_LOG_BIN = 0;
		DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';
		SET PASSWORD FOR 'root'@'localhost' = PASSWORD('$password');
		$root_elsewhere
		$mysql_localhost
		$(healthcheck_users)
	EOSQL
	root_password_set=1
}

setup_database() {
	if [ -z "$MARIADB_INITDB_SKIP_TZINFO" ]; then
		mariadb-tzinfo-to-sql --skip-write-binlog /usr/share/zoneinfo 2>/dev/null | sql --database=mysql
	fi
	secure_accounts
	if [ -n "$MARIADB_DATABASE" ]; then
		note "Creating database ${MARIADB_DATABASE}"
		sql <<<"CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
	fi
	if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
		note "Creating user ${MARIADB_USER}"
		sql <<<"CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$(sql_string "$MARIADB_PASSWORD")';"
		if [ -n "$MARIADB_DATABASE" ]; then
			note "Giving user ${MARIADB_USER} access to schema ${MARIADB_DATABASE}"
			# In a GRANT, _ is a wildcard: escaped, the grant names this database alone.
			sql <<<"GRANT ALL ON \`${MARIADB_DATABASE//_/\\_}\`.* TO '$MARIADB_USER'@'%';"
		fi
	fi
}

# /docker-entrypoint-initdb.d/ in name order: SQL runs in MARIADB_DATABASE when there is one;
# an executable script runs, another one is sourced (it sees this script's functions).
run_init_files() {
	local file database=()
	if [ -n "$MARIADB_DATABASE" ]; then
		database=(--database="$MARIADB_DATABASE")
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
	note "MariaDB init process done. Ready for start up."
}

if [ $# -eq 0 ] || [ "${1:0:1}" = - ]; then
	set -- mariadbd "$@"
fi

if { [ "$1" = mariadbd ] || [ "$1" = mysqld ]; } && ! wants_help "$@"; then
	note "Entrypoint script for MariaDB Server (stand-in: $(mariadbd --version)) started."
	if ! errors="$("$@" --verbose --help 2>&1 >/dev/null)"; then
		fail "mariadbd failed while attempting to check config
	command was: $*
	$errors"
	fi
	server=("$@")
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

	load_env
	# A data directory with a mysql/ directory (the system tables) is initialised already.
	if [ ! -d "$DATADIR/mysql" ]; then
		root_password_set=
		initialise "$@"
	elif [ -n "${MARIADB_AUTO_UPGRADE:-}" ]; then
		warn "MARIADB_AUTO_UPGRADE is not reproduced by this stand-in: no upgrade is run"
	fi
fi

exec "$@"
