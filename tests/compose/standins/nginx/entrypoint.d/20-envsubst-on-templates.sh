#!/bin/sh
# As in the official image: each *.template file under NGINX_ENVSUBST_TEMPLATE_DIR
# (/etc/nginx/templates) becomes the file of the same relative path, suffix removed, under
# NGINX_ENVSUBST_OUTPUT_DIR (/etc/nginx/conf.d). In it, $NAME and ${NAME} are replaced for the
# variables defined in the environment only, so nginx's own ($host, $remote_addr...) stay;
# with NGINX_ENVSUBST_FILTER (a regular expression) set, only for the names it matches.
# NGINX_ENVSUBST_TEMPLATE_SUFFIX changes the suffix.
set -eu

me=$(basename "$0")
template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
filter=${NGINX_ENVSUBST_FILTER:-}

log() {
	if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
		echo "$me: $*"
	fi
}

if [ ! -d "$template_dir" ]; then
	exit 0
fi
if [ ! -w "$output_dir" ]; then
	log "ERROR: $template_dir exists, but $output_dir is not writable"
	exit 0
fi

# envsubst replaces the variables its argument names: "${A} ${B} ...", the defined ones.
defined=$(awk -v filter="$filter" 'END {
	for (name in ENVIRON)
		if (name ~ filter)
			printf "${%s} ", name
}' </dev/null)

find "$template_dir" -follow -type f -name "*$suffix" -print | while IFS= read -r template; do
	relative=${template#"$template_dir/"}
	output=$output_dir/${relative%"$suffix"}
	mkdir -p "$(dirname "$output")"
	log "Running envsubst on $template to $output"
	envsubst "$defined" <"$template" >"$output"
done
