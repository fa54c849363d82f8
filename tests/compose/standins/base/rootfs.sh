#!/bin/sh
# The root file system of the stand-ins' base image, into the directory given (absent or
# empty): Debian bookworm's minimal installation (debootstrap's minbase variant: dpkg, apt,
# bash, coreutils and little else), slimmed as the official debian:bookworm-slim image is.
set -eu

root=$1
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian

# The build host's name and resolver came along (Docker provides both at run time), and apt's
# downloads and package lists (each stand-in runs apt-get update for what it installs).
rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
rm -f "$root/var/log/bootstrap.log"

# Documentation, manual pages and translations go, licences stay; dpkg.cfg keeps the
# packages installed later in the same shape.
find "$root/usr/share/doc" ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
