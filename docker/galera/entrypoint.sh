#!/bin/bash
# Start of a Galera node in the official mariadb image (compose.cluster.yml): decides how the
# node starts, then hands over to the image's own docker-entrypoint.sh.
#
# - Node 1 (GALERA_BOOTSTRAP=1) bootstraps a new cluster (--wsrep-new-cluster) when its data
#   directory is new (the image's entrypoint then initialises it: root password, the app's
#   database and user, /docker-entrypoint-initdb.d) or when Galera marked it
#   safe_to_bootstrap: it was the last node of the cluster to stop cleanly (`docker compose
#   down` stops it last, the other nodes depending on it). Never while another node of the
#   cluster answers: a cluster exists then, and node 1 joins it like the others below.
# - Nodes 2 and 3 never initialise: an empty data directory gets an empty mysql/ directory,
#   which is how the image's entrypoint tells an existing database, and the node copies
#   everything (users included) from a donor by SST.
# - A node killed while running left seqno -1 in grastate.dat (a clean stop writes its
#   position there): its position is first recovered from InnoDB (mariadbd --wsrep-recover,
#   as Debian's galera_recovery does before every start) and passed on, so the node catches up
#   by IST instead of copying everything again.
set -euo pipefail

# As the image's entrypoint: options alone mean mariadbd with those options.
if [ $# -eq 0 ] || [ "${1:0:1}" = '-' ]; then
	set -- mariadbd "$@"
fi

# A setting as the server sees it (the method of the image's entrypoint).
setting() {
	"${server[@]}" --verbose --help 2>/dev/null | awk -v name="$1" '$1 == name { print $2; exit }'
}

# Whether another node's group communication port answers (gcomm://host[:port],...).
peer_answers() {
	local address peer host port
	local -a peers
	address="$(setting wsrep-cluster-address)"
	address="${address#gcomm://}"
	IFS=, read -ra peers <<<"${address%%\?*}"
	for peer in "${peers[@]}"; do
		host="${peer%%:*}"
		port=4567
		if [[ "$peer" == *:* ]]; then
			port="${peer##*:}"
		fi
		if [ -n "$host" ] && timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
			return 0
		fi
	done
	return 1
}

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
	server=("$@")
	datadir="$(setting datadir)"
	datadir="${datadir%/}"
	state="$datadir/grastate.dat"
	options=()
	if [ -f "$state" ] && grep -q '^seqno: *-1' "$state"; then
		position="$("$@" --user=mysql --wsrep-recover --disable-log-error 2>&1 |
			sed -n 's/.*WSREP: Recovered position: *//p' | tail -n 1)" || position=
		case "$position" in
			'' | *:-1) ;;
			*) options+=("--wsrep-start-position=$position") ;;
		esac
	fi
	bootstrap=
	if [ "${GALERA_BOOTSTRAP:-0}" = 1 ]; then
		# No grastate.dat yet counts as safe, as for Galera itself.
		if [ ! -f "$state" ] || grep -q '^safe_to_bootstrap: *1' "$state"; then
			if peer_answers; then
				echo "galera-entrypoint: another node answers: joining its cluster" >&2
			else
				bootstrap=1
				options+=(--wsrep-new-cluster)
			fi
		fi
	fi
	if [ ! -d "$datadir/mysql" ] && [ -z "$bootstrap" ]; then
		mkdir -p "$datadir/mysql"
	fi
	set -- "$@" "${options[@]}"
fi

exec docker-entrypoint.sh "$@"
