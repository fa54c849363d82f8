"""Local stand-ins for the images the deployment files name, for a machine that has Docker but
no image registry to pull from.

compose.yml, compose.cluster.yml, docker/Dockerfile and docker/galera/Dockerfile run upstream
images (``mysql:8.4.13``, ``nginx:1.30.3-alpine``, ``python:3.11.14-slim-bookworm``...). A
*stand-in* is an image built here from Debian bookworm's packages and tagged with exactly such
a reference, so that ``docker compose up --build`` runs the shipped files unchanged. It
reproduces what those files rely on in the upstream image (entrypoint and environment
variables, paths, users, default command, the tools health checks call) with Debian's build of
the software, which may be an older release: each image's ``org.opencontainers.image.description``
label says which. Stand-ins are for tests only. grafana/grafana has none (Debian has no
Grafana): the stack runs without it.

Recipes: tests/compose/standins/<name>/ holds a stand-in's Dockerfile and scripts. Each starts
``FROM`` the shared base (build argument BASE) and gets the references it stands in for as
build argument IMAGE, for its description. standins/base/ is that base: ``rootfs.sh`` (Debian's
minimal bookworm by debootstrap, brought in by ``docker import``) under a layer with the host's
CA bundle, so that apt and pip inside trust what the host trusts.

Caching: each image carries the label ``org.webapp.standin.recipe``, a hash of its recipe (its
folder's files; for a stand-in also the base's hash, for the base also the CA bundle). An image
whose label matches is not rebuilt: editing a recipe rebuilds that image, editing the base
rebuilds them all. To rebuild one anyway, remove it (``docker rmi mysql:8.4.13``). Superseded
images stay, untagged, until ``docker image prune``.

Usage: ``python -m tests.compose.engine`` builds every stand-in the deployment files need and
prints a table of them; tests call ``build_standins(ensure_engine())``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from tests.compose_files import load_compose
from tests.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"

# The engine used when none answers on DOCKER_HOST: a dockerd of its own, apart from any
# system one (its data, state and socket all under webapp-docker).
SOCKET = "unix:///run/webapp-docker/docker.sock"
PIDFILE = Path("/run/webapp-docker/dockerd.pid")
DOCKERD = [
    "dockerd",
    "--data-root=/var/lib/webapp-docker",
    "--exec-root=/run/webapp-docker/exec",
    f"--pidfile={PIDFILE}",
    f"--host={SOCKET}",
]
DOCKERD_LOG = Path(tempfile.gettempdir()) / "dockerd.log"
# What the engine needs from Debian, by a file each package installs.
HOST_PACKAGES = {"docker.io": Path("/usr/sbin/dockerd"), "debootstrap": Path("/usr/sbin/debootstrap")}
# Builds use the engine's classic builder, the one the recipes are tested with (there is no
# buildx plugin): DOCKER_BUILDKIT=0 selects it for docker build and for docker compose, and
# COMPOSE_BAKE=false keeps compose from handing builds to `buildx bake`.
BUILD_SETTINGS = {"DOCKER_BUILDKIT": "0", "COMPOSE_BAKE": "false"}

# Where upstream images are named: the compose files' `image:` keys, the Dockerfiles' FROM.
COMPOSE_FILES = ("compose.yml", "compose.cluster.yml")
DOCKERFILES = ("docker/Dockerfile", "docker/galera/Dockerfile")
FROM_LINE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?", re.I | re.M)

# The recipe (a folder of standins/) standing in for each upstream repository.
RECIPES = {
    "python": "python",
    "mysql": "mysql",
    "nginx": "nginx",
    "prom/prometheus": "prometheus",
    "mariadb": "mariadb",
    "haproxy": "haproxy",
}
# Upstream repositories deliberately left without a stand-in, and why.
WITHOUT_STANDIN = {"grafana/grafana": "Debian has no Grafana package (the stack runs without it)"}

BASE = STANDINS / "base"
BASE_REPOSITORY = "webapp-standin/bookworm"
ROOTFS_REPOSITORY = "webapp-standin/bookworm-rootfs"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RECIPE_LABEL = "org.webapp.standin.recipe"
# A root file system (directory "$1") into an image ("$3", with the change "$2").
IMPORT_ROOTFS = 'tar -C "$1" -c . | docker import --change "$2" - "$3"'


class StandinError(RuntimeError):
    """The engine could not be started or a stand-in could not be built; the message says why."""


def _progress(message: str) -> None:
    print(f"[standins] {message}", flush=True)


def _tail(output: str, lines: int = 80) -> str:
    return "\n".join(output.splitlines()[-lines:])


def run(args: list[str], env: dict[str, str], **options) -> str:
    """Run a command to completion and return its output; on failure raise StandinError with
    the end of its output, so that the cause is in the report."""
    try:
        completed = subprocess.run(args, env=env, check=True, capture_output=True, text=True, **options)
    except subprocess.CalledProcessError as error:
        output = f"{_tail(error.stdout)}\n{_tail(error.stderr)}"
        raise StandinError(f"{' '.join(args)} failed (exit {error.returncode}):\n{output}") from error
    return completed.stdout


# --- The engine -----------------------------------------------------------------------------


def _answers(env: dict[str, str]) -> bool:
    """Whether `docker info` gets an answer from the engine of ``env``'s DOCKER_HOST."""
    try:
        return subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _install_missing(env: dict[str, str]) -> None:
    missing = [package for package, installed in HOST_PACKAGES.items() if not installed.exists()]
    if missing:
        _progress(f"installing {' '.join(missing)} with apt-get")
        apt_env = {**env, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update"], apt_env)
        run(["apt-get", "install", "-y", "--no-install-recommends", *missing], apt_env)


def _dockerd_running() -> bool:
    """Whether the dockerd of PIDFILE is alive (then it is still starting: not started twice)."""
    try:
        os.kill(int(PIDFILE.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _start_dockerd(env: dict[str, str]) -> None:
    """dockerd in the background and a session of its own (setsid --fork), so that it outlives
    the tests: it is left running for the next run."""
    if _dockerd_running():
        return
    PIDFILE.parent.mkdir(parents=True, exist_ok=True)
    _progress(f"starting dockerd on {SOCKET} (log: {DOCKERD_LOG})")
    with DOCKERD_LOG.open("ab") as log:
        subprocess.run(
            ["setsid", "--fork", *DOCKERD],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            check=True,
        )


def ensure_engine() -> dict[str, str]:
    """The environment for docker and docker compose commands (os.environ with DOCKER_HOST and
    the build settings): the engine of DOCKER_HOST if it answers, else the one on SOCKET,
    started (and Debian's docker.io and debootstrap installed) if need be."""
    env = {**os.environ, **BUILD_SETTINGS}
    for host in dict.fromkeys(filter(None, [os.environ.get("DOCKER_HOST"), SOCKET])):
        if _answers({**env, "DOCKER_HOST": host}):
            return {**env, "DOCKER_HOST": host}
    env["DOCKER_HOST"] = SOCKET
    _install_missing(env)
    _start_dockerd(env)
    wait_until(lambda: _answers(env), 60, f"dockerd to answer on {SOCKET} (log: {DOCKERD_LOG})")
    return env


# --- What the deployment files use ----------------------------------------------------------


def images_used() -> set[str]:
    """Every upstream image the deployment files name: the compose services' ``image`` (of
    those not built here) and the Dockerfiles' FROM lines (but earlier build stages)."""
    images = set()
    for name in COMPOSE_FILES:
        for service in load_compose(ROOT / name)["services"].values():
            if "image" in service and "build" not in service:
                images.add(service["image"])
    for name in DOCKERFILES:
        stages = set()
        for line in FROM_LINE.finditer((ROOT / name).read_text()):
            if line["image"].lower() not in stages:
                images.add(line["image"])
            if line["stage"]:
                stages.add(line["stage"].lower())
    return images


def repository(reference: str) -> str:
    """The repository of an image reference: ``prom/prometheus`` of ``prom/prometheus:v3.13.2``."""
    name = reference.split("@", 1)[0]
    head, _, tag = name.rpartition(":")
    return head if head and "/" not in tag else name


# --- Building -------------------------------------------------------------------------------


def recipe_hash(folder: Path, *inputs: bytes) -> str:
    """A short hash of every file under ``folder`` (path, executable bit, content) and ``inputs``."""
    digest = hashlib.sha256()
    for data in inputs:
        digest.update(data)
    for path in sorted(path for path in folder.rglob("*") if path.is_file()):
        executable = bool(path.stat().st_mode & 0o100)
        digest.update(f"{path.relative_to(folder)}\0{executable}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _image_recipe(reference: str, env: dict[str, str]) -> str | None:
    """The recipe label of a local image; None when there is no such image (the inspection fails)."""
    inspected = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", reference],
        env=env,
        capture_output=True,
        text=True,
    )
    if inspected.returncode != 0:
        return None
    return (json.loads(inspected.stdout) or {}).get(RECIPE_LABEL)


def _docker_build(
    context: Path, tags: list[str], recipe: str, arguments: dict[str, str], env: dict[str, str]
) -> None:
    command = ["docker", "build", "--force-rm", "--label", f"{RECIPE_LABEL}={recipe}"]
    for name, value in arguments.items():
        command += ["--build-arg", f"{name}={value}"]
    for tag in tags:
        command += ["--tag", tag]
    run([*command, str(context)], env)


def _remove_tree(path: Path) -> None:
    """Delete a build directory, unless something is still mounted in it: a debootstrap that
    failed half-way can leave /proc or /sys mounted in its new root, and deleting through those
    would reach the host's."""
    with open("/proc/self/mounts") as mounts:
        mounted = [line.split()[1] for line in mounts if line.split()[1].startswith(f"{path}/")]
    if mounted:
        raise StandinError(f"{path} is left for you to delete: unmount {', '.join(mounted)} first")
    shutil.rmtree(path)


def _build_base(env: dict[str, str]) -> tuple[str, str, float]:
    """The base image, built unless cached: (its tag, its recipe hash, seconds spent)."""
    recipe = recipe_hash(BASE, CA_BUNDLE.read_bytes())
    tag = f"{BASE_REPOSITORY}:{recipe}"
    if _image_recipe(tag, env) == recipe:
        _progress(f"{tag}: cached")
        return tag, recipe, 0.0
    _progress(f"{tag}: debootstrap of bookworm (minbase), then the base layer")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="webapp-standin-"))
    try:
        rootfs, rootfs_tag = work / "rootfs", f"{ROOTFS_REPOSITORY}:{recipe}"
        run(["sh", str(BASE / "rootfs.sh"), str(rootfs)], env)
        label = f"LABEL {RECIPE_LABEL}={recipe}"
        run(["bash", "-o", "pipefail", "-c", IMPORT_ROOTFS, "import", str(rootfs), label, rootfs_tag], env)
        context = work / "context"
        shutil.copytree(BASE, context)
        shutil.copyfile(CA_BUNDLE, context / "ca-certificates.crt")
        _docker_build(context, [tag], recipe, {"ROOTFS": rootfs_tag}, env)
    finally:
        _remove_tree(work)
    seconds = time.monotonic() - started
    _progress(f"{tag}: built in {seconds:.0f} s")
    return tag, recipe, seconds


def _build_standin(name: str, references: list[str], base: tuple[str, str], env: dict[str, str]) -> float:
    """The stand-in of recipe ``name`` tagged with ``references``, built unless cached; returns
    the seconds spent building (0 when cached)."""
    base_tag, base_recipe = base
    recipe = recipe_hash(STANDINS / name, base_recipe.encode())
    shown = ", ".join(references)
    if all(_image_recipe(reference, env) == recipe for reference in references):
        _progress(f"{shown}: cached (standins/{name})")
        return 0.0
    _progress(f"{shown}: building standins/{name}")
    started = time.monotonic()
    _docker_build(STANDINS / name, references, recipe, {"BASE": base_tag, "IMAGE": shown}, env)
    seconds = time.monotonic() - started
    _progress(f"{shown}: built in {seconds:.0f} s")
    return seconds


def _plan(images: Iterable[str]) -> dict[str, list[str]]:
    """The references to tag, by recipe. An image deliberately without a stand-in gets a
    progress line; one of any other repository is an error, before anything is built."""
    plan = defaultdict(list)
    for reference in sorted(images):
        name = repository(reference)
        if name in WITHOUT_STANDIN:
            _progress(f"{reference}: skipped, {WITHOUT_STANDIN[name]}")
        elif name in RECIPES:
            plan[RECIPES[name]].append(reference)
        else:
            raise StandinError(
                f"no stand-in for {reference}: add a recipe for {name!r} to RECIPES and {STANDINS}"
            )
    return plan


def build_standins(env: dict[str, str], images: Iterable[str] | None = None) -> dict[str, float]:
    """Build the base, then the stand-in of each of ``images`` (by default every image the
    deployment files use), each unless cached. Returns the seconds spent per image, base
    included (0 for a cached one); images without a stand-in are reported and left out."""
    plan = _plan(images_used() if images is None else images)
    if not plan:
        return {}
    base_tag, base_recipe, seconds = _build_base(env)
    spent = {base_tag: seconds}
    for name, references in sorted(plan.items()):
        seconds = _build_standin(name, references, (base_tag, base_recipe), env)
        spent.update(dict.fromkeys(references, seconds))
    return spent


# --- python -m tests.compose.engine ---------------------------------------------------------


def _size(reference: str, env: dict[str, str]) -> str:
    size = int(run(["docker", "image", "inspect", "--format", "{{.Size}}", reference], env))
    return f"{size / 1e6:.0f} MB"


def main() -> None:
    """Build what the deployment files need; print image, recipe, built or cached, time, size."""
    env = ensure_engine()
    images = images_used()
    spent = build_standins(env, images)
    rows = [("image", "stand-in recipe", "result", "seconds", "size")]
    for image, seconds in spent.items():
        recipe = "base" if image.startswith(BASE_REPOSITORY) else RECIPES[repository(image)]
        result = "built" if seconds else "cached"
        rows.append((image, f"standins/{recipe}", result, f"{seconds:.0f}", _size(image, env)))
    rows += [(image, "-", "skipped", "-", "-") for image in sorted(images - spent.keys())]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
