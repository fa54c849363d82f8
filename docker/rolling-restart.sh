#!/usr/bin/env bash
# Restart a compose service's containers one at a time, each healthy again before the next,
# so that nginx always has a replica to send requests to and none is dropped.
#
#   docker/rolling-restart.sh [SERVICE]     (default: app)
#
# Run it where you run `docker compose` (the project's folder and .env; COMPOSE_FILE and
# COMPOSE_PROJECT_NAME are honoured). COMPOSE names the compose command (default:
# "docker compose"). `docker compose restart app` instead restarts every replica at once,
# and while none is up nginx can only answer 502. A single replica has nothing beside it: a
# second one is started for the duration, then removed (gracefully) once the first is back.
set -euo pipefail

service="${1:-app}"
read -r -a compose <<<"${COMPOSE:-docker compose}"

log() { printf 'rolling-restart: %s\n' "$*" >&2; }

healthy() { # container: until its health check passes (bounded by the image's checks)
	local container="$1" status deadline=$((SECONDS + 180))
	while ((SECONDS < deadline)); do
		status="$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$container")"
		case "$status" in
		healthy | none) return 0 ;;
		esac
		sleep 1
	done
	log "$container did not become healthy within 180 s"
	return 1
}

mapfile -t replicas < <("${compose[@]}" ps --quiet "$service")
if ((${#replicas[@]} == 0)); then
	log "no running container of service $service"
	exit 1
fi

extra=""
if ((${#replicas[@]} == 1)); then
	log "one replica: starting a second for the restart"
	"${compose[@]}" up --detach --no-deps --no-recreate --scale "$service=2" "$service"
	for container in $("${compose[@]}" ps --quiet "$service"); do
		if [[ "$container" != "${replicas[0]}"* && "${replicas[0]}" != "$container"* ]]; then
			extra="$container"
		fi
	done
	healthy "$extra"
fi

for container in "${replicas[@]}"; do
	# The container's own stop timeout (compose's stop_grace_period): gunicorn drains first.
	grace="$(docker inspect --format '{{or .Config.StopTimeout 10}}' "$container")"
	log "restarting $container (up to $grace s to stop)"
	docker restart --time "$grace" "$container" >/dev/null
	healthy "$container"
done

if [[ -n "$extra" ]]; then
	log "removing the extra replica"
	"${compose[@]}" up --detach --no-deps --no-recreate --scale "$service=1" "$service"
fi
log "every replica of $service restarted"
