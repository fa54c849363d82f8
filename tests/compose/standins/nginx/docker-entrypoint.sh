#!/bin/sh
# The official nginx image's entrypoint. When the command is nginx (or nginx-debug), the files
# of /docker-entrypoint.d/ (the image's, and any mounted there) come first, in version order:
# an executable *.envsh is sourced (what it exports reaches the files after it and nginx), an
# executable *.sh is run, anything else is ignored. Then the command replaces this shell.
# NGINX_ENTRYPOINT_QUIET_LOGS silences these lines.
set -eu

log() {
	if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
		echo "$0: $*"
	fi
}

configure() {
	local_files=$(find /docker-entrypoint.d/ -follow -type f -print | sort -V)
	if [ -z "$local_files" ]; then
		log "No files found in /docker-entrypoint.d/, skipping configuration"
		return
	fi
	log "/docker-entrypoint.d/ is not empty, will attempt to perform configuration"
	# A here-document rather than a pipe into the loop: the loop runs in this shell, so what a
	# sourced file exports stays for the rest.
	while IFS= read -r file; do
		case "$file" in
			*.envsh | *.sh)
				if [ ! -x "$file" ]; then
					log "Ignoring $file, not executable"
				elif [ "${file%.envsh}" != "$file" ]; then
					log "Sourcing $file"
					# Under the official entrypoint's options (-e alone): a sourced file may
					# read variables that are not set.
					set +u
					# shellcheck disable=SC1090
					. "$file"
					set -u
				else
					log "Launching $file"
					"$file"
				fi
				;;
			*) log "Ignoring $file" ;;
		esac
	done <<-EOF
		$local_files
	EOF
	log "Configuration complete; ready for start up"
}

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
	configure
fi

exec "$@"
