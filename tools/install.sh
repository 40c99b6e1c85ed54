#!/usr/bin/env bash
# Build the tidewatch extension and install it into a PostgreSQL 15 installation without
# disturbing a server that runs from it.
#
#   bash tools/install.sh [--release] [--pg-config PATH]
#
# `cargo pgrx install` copies tidewatch.so over the installed file in place: a running server has
# that file mapped (it is preloaded), and rewriting it under the server kills its processes with
# SIGBUS (seen: the decoder of async monitors died and the postmaster shut down for good). Here
# the package is built first (`cargo pgrx package`), then each file is written next to its
# destination and renamed over it: rename(2) swaps the directory entry atomically, and running
# processes keep the old file until they restart. Then, in each database:
#   ALTER EXTENSION tidewatch UPDATE;      -- new SQL objects, upgrade scripts
# and restart the server to load the new library (it is preloaded). See docs/upgrading.md.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

profile=--debug pg_config=$PG_CONFIG
while [ $# -gt 0 ]; do
    case $1 in
        --release) profile= ;;
        --pg-config) pg_config=$2; shift ;;
        *) echo "usage: $0 [--release] [--pg-config PATH]" >&2; exit 2 ;;
    esac
    shift
done
install_package "$pg_config" $profile
