#!/bin/sh
# Packages installed in an image build start no service: invoke-rc.d asks this script first,
# and 101 means "action forbidden". A container starts its server itself, as its command.
exit 101
