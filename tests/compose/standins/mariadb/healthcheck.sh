#!/bin/bash
# The official mariadb image's healthcheck.sh, as far as compose.cluster.yml uses it. Each test
# argument runs in order; the first that fails ends the check with status 1:
#   --connect             the server answers a TCP connection to localhost (a refused login
#                         counts as an answer; the temporary server that initialises the data
#                         directory does not listen on TCP, so this fails until the real one is up)
#   --innodb_initialized  InnoDB is available (queried over the socket)
#   --galera_online       this Galera node is Synced: wsrep_local_state 4 (over the socket)
# Options apply to the tests after them:
#   --su-mysql, --su=USER  run the rest as that user, e.g. to log in as mysql@localhost by
#                          unix_socket authentication
#   --no-defaults, --defaults-file=F, --defaults-extra-file=F, --defaults-group-suffix=S
#                          the client's option files; by default the health check account's,
#                          $datadir/.my-healthcheck.cnf, when the entrypoint made one
#   --datadir=D            where that file is (/var/lib/mysql)
# A dash may stand for an underscore in test names (--galera-online).
set -euo pipefail

datadir=/var/lib/mysql
no_defaults=
defaults_file=
extra_file=
group_suffix=

# The client with the option files asked for (they must come first on its command line).
client() {
	local options=() extra=$extra_file
	if [ -n "$no_defaults" ]; then
		options+=(--no-defaults)
	else
		if [ -n "$defaults_file" ]; then
			options+=(--defaults-file="$defaults_file")
		fi
		if [ -z "$extra" ] && [ -f "$datadir/.my-healthcheck.cnf" ]; then
			extra=$datadir/.my-healthcheck.cnf
		fi
		if [ -n "$extra" ]; then
			options+=(--defaults-extra-file="$extra")
		fi
	fi
	if [ -n "$group_suffix" ]; then
		options+=(--defaults-group-suffix="$group_suffix")
	fi
	mariadb "${options[@]}" "$@"
}

# One value, queried over the socket.
query() {
	client --protocol=socket --batch --skip-column-names --execute="$1"
}

connect() {
	local output
	if output="$(client --host=localhost --protocol=tcp --execute='SELECT 1' 2>&1)"; then
		return 0
	fi
	[[ "$output" != *"Can't connect"* ]]
}

innodb_initialized() {
	[ "$(query "SELECT 1 FROM information_schema.ENGINES
		WHERE ENGINE = 'InnoDB' AND SUPPORT IN ('YES', 'DEFAULT', 'ENABLED')")" = 1 ]
}

# Galera's node states: 1 Joining, 2 Donor/Desynced, 3 Joined, 4 Synced.
galera_online() {
	[ "$(query "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
		WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'")" = 4 ]
}

if [ $# -eq 0 ]; then
	echo "healthcheck.sh: no test given (--connect, --innodb_initialized, --galera_online)" >&2
	exit 1
fi

while [ $# -gt 0 ]; do
	case "$1" in
		--su-mysql)
			shift
			exec gosu mysql "${BASH_SOURCE[0]}" "$@"
			;;
		--su=*)
			user=${1#--su=}
			shift
			exec gosu "$user" "${BASH_SOURCE[0]}" "$@"
			;;
		--no-defaults) no_defaults=1 ;;
		--defaults-file=*) defaults_file=${1#*=} ;;
		--defaults-extra-file=*) extra_file=${1#*=} ;;
		--defaults-group-suffix=*) group_suffix=${1#*=} ;;
		--datadir=*) datadir=${1#*=} ;;
		--connect | --innodb[_-]initialized | --galera[_-]online)
			test=${1#--}
			test=${test//-/_}
			if ! "$test"; then
				echo "healthcheck $test failed" >&2
				exit 1
			fi
			;;
		*)
			echo "healthcheck.sh: unknown option or test: $1" >&2
			exit 1
			;;
	esac
	shift
done
