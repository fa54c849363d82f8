#!/bin/sh
# As in the official image: with NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE set,
# worker_processes in /etc/nginx/nginx.conf becomes the number of CPUs this container may use:
# those it may run on (nproc), or fewer under a CPU quota (`docker run --cpus`), rounded up.
set -eu

me=$(basename "$0")
conf=/etc/nginx/nginx.conf

if [ -z "${NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE:-}" ]; then
	exit 0
fi
if [ ! -w "$conf" ]; then
	echo "$me: $conf is not writable: worker_processes left as it is"
	exit 0
fi

# The quota and its period in microseconds: cgroup v2's cpu.max ("max 100000" when there is
# none), else cgroup v1's pair of files (a quota of -1 when there is none).
if [ -r /sys/fs/cgroup/cpu.max ]; then
	read -r quota period </sys/fs/cgroup/cpu.max
else
	quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || echo -1)
	period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || echo 100000)
fi

cpus=$(nproc)
if [ "$quota" != max ] && [ "$quota" -gt 0 ]; then
	allowed=$(((quota + period - 1) / period))
	if [ "$allowed" -lt "$cpus" ]; then
		cpus=$allowed
	fi
fi

echo "$me: worker_processes $cpus"
sed -i -E "s/^worker_processes\s+[^;]+;/worker_processes $cpus;/" "$conf"
