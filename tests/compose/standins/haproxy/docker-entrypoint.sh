#!/bin/sh
# The official haproxy image's entrypoint: options alone as the command mean haproxy with
# those options, and haproxy runs in master-worker mode (-W: a reload is a SIGUSR2 to the
# master) in the foreground (-db), as a container's main process must.
set -eu

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- haproxy "$@"
fi

if [ "$1" = haproxy ]; then
	shift
	set -- haproxy -W -db "$@"
fi

exec "$@"
