# Shared by tools/demo.sh, tools/test.sh and benches: dependencies, build, local clusters.
# shellcheck shell=bash
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A target dir outside the clone keeps rebuilds incremental across fresh clones.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/tidewatch-target}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
PGRX_VERSION=0.18.1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The Debian packages named ($@) that are not installed yet, installed; a status other than 0
# when apt could not.
apt_install() {
    local need=() p
    for p in "$@"; do
        # (dpkg -s also succeeds for a package removed with its configuration files left.)
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || need+=("$p")
    done
    [ ${#need[@]} -gt 0 ] || return 0
    say "installing ${need[*]}"
    as_root apt-get update -qq &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

# apt packages, cargo-pgrx and `cargo pgrx init`, each only when missing.
ensure_deps() {
    apt_install postgresql-15 postgresql-server-dev-15 libclang-dev clang pkg-config sudo
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        say "installing cargo-pgrx $PGRX_VERSION (about 7 minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    if ! grep -qs '^pg15' "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        say "pointing pgrx at the system PostgreSQL 15"
        cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
    fi
}

# Build and install the extension into the PostgreSQL 15 of $PG_CONFIG (debug unless $1 =
# --release), atomically (see install_package).
install_extension() {
    say "building and installing the tidewatch extension ${1:-}"
    if [ "${1:-}" = --release ]; then install_package "$PG_CONFIG"; else install_package "$PG_CONFIG" --debug; fi
}

# install_package PG_CONFIG [--debug]: build the extension's package (`cargo pgrx package`) and
# install each file by writing it beside its destination and renaming it over the old one. A
# running server keeps the library it has mapped (rewriting it in place, as `cargo pgrx install`
# does, kills the server's processes with SIGBUS) and loads the new one when it restarts.
install_package() {
    local pgc=$1 prof=${2:-} out f dest
    mkdir -p "$CARGO_TARGET_DIR"
    out=$(mktemp -d "$CARGO_TARGET_DIR/package.XXXXXX")
    (cd "$REPO/extension" && cargo pgrx package --pg-config "$pgc" $prof --out-dir "$out" >/dev/null)
    while IFS= read -r -d '' f; do
        dest=${f#"$out"}    # the package mirrors the installation's absolute paths
        as_root install -d "$(dirname "$dest")"
        as_root install -m "$(stat -c %a "$f")" "$f" "$dest.tidewatch-new"
        as_root mv -f "$dest.tidewatch-new" "$dest"
    done < <(find "$out" -type f -print0)
    rm -rf "$out"
}

# use_private_pg DIR: make DIR hold a private copy of the PostgreSQL 15 installation of
# $PG_CONFIG (binaries, libraries, share and include files: PostgreSQL finds them relative to its
# binaries, so the copy works where it is), and point PG_CONFIG, PGBIN, PGRX_HOME and the cargo
# target dir of pgrx builds at it. The test command builds and installs into that copy only: it
# never writes the installation other clusters (the demo's, a user's) run from.
use_private_pg() {
    local dir=$1
    copy_pg "$dir" >/dev/null
    local bindir
    bindir=$("$PG_CONFIG" --bindir)
    PG_CONFIG=$dir/root$bindir/pg_config
    PGBIN=$dir/root$bindir
    as_root mkdir -p "$dir/pgrx"
    local conf
    conf=$(printf '[configs]\npg15 = "%s"' "$PG_CONFIG")
    if [ "$(cat "$dir/pgrx/config.toml" 2>/dev/null)" != "$conf" ]; then
        echo "$conf" | as_root tee "$dir/pgrx/config.toml" >/dev/null
    fi
    export PG_CONFIG PGBIN PGRX_HOME=$dir/pgrx CARGO_TARGET_DIR=$CARGO_TARGET_DIR/private-pg
}

# copy_pg DIR: copy the PostgreSQL installation of $PG_CONFIG under DIR/root (kept when the
# server build is the same; extensions installed since are picked up); print the copy's pg_config.
copy_pg() {
    local dir=$1 bindir libdir sharedir incdir
    bindir=$("$PG_CONFIG" --bindir); sharedir=$("$PG_CONFIG" --sharedir); incdir=$("$PG_CONFIG" --pkgincludedir)
    libdir=$(dirname "$bindir")
    if ! cmp -s "$bindir/postgres" "$dir/root$bindir/postgres"; then
        as_root rm -rf "$dir/root"
        as_root mkdir -p "$dir/root$(dirname "$libdir")" "$dir/root$(dirname "$sharedir")" "$dir/root$(dirname "$incdir")"
        as_root cp -a "$libdir" "$dir/root$(dirname "$libdir")/"
        as_root cp -a "$sharedir" "$dir/root$(dirname "$sharedir")/"
        as_root cp -a "$incdir" "$dir/root$(dirname "$incdir")/"
    else
        # Same server build: only pick up extensions installed since (Citus, say). Copies keep
        # their times, so pgrx does not regenerate its bindings.
        as_root cp -a -u "$libdir/." "$dir/root$libdir/"
        as_root cp -a -u "$sharedir/extension/." "$dir/root$sharedir/extension/"
    fi
    echo "$dir/root$bindir/pg_config"
}

# cluster_start DIR PORT DBNAMES [PRELOAD] [EXTRA_CONF]: a cluster owned by postgres on
# 127.0.0.1:PORT with tidewatch preloaded and its scheduler running in the comma-separated
# DBNAMES. PRELOAD replaces shared_preload_libraries (default 'tidewatch'; Citus nodes use
# 'citus,tidewatch'); EXTRA_CONF lines are appended to the configuration.
cluster_start() {
    local dir=$1 port=$2 dbs=$3 preload=${4:-tidewatch} extra=${5:-}
    as_root install -d -o postgres -g postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_root runuser -u postgres -- "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    as_root tee "$dir/data/postgresql.auto.conf" >/dev/null <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = '$preload'
tidewatch.scheduler_databases = '$dbs'
tidewatch.scheduler_naptime = 500
max_worker_processes = 16
wal_level = logical
max_replication_slots = 10
$(plugin_allowlist)
lc_messages = 'C'
timezone = 'UTC'
log_min_messages = warning
$extra
CONF
    cluster_stop "$dir"
    local try seen
    for try in 1 2 3 4 5; do
        seen=0
        if [ -f "$dir/server.log" ]; then seen=$(wc -l < "$dir/server.log"); fi
        if as_root runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
            return 0
        fi
        # A client socket can hold a port of the kernel's ephemeral range (32768-60999) for as
        # long as its connection lives ("Address already in use"; CI lost the Citus cluster to
        # it once at 55462). The default ports of the tests, the demo and the benches lie below
        # that range for this reason; for a port set inside it, wait and try again. Any other
        # failure is final.
        local since
        since=$(tail -n +"$((seen + 1))" "$dir/server.log" 2>/dev/null || true)
        [[ $since == *"Address already in use"* ]] || return 1
        echo "port $port is held by another socket; starting again (attempt $try)" >&2
        sleep 2
    done
    return 1
}

# PostgreSQL 15.19 and later load only the logical decoding output plugins listed in
# output_plugin_libraries (async monitors decode through the plugin tidewatch); older minors
# have no such setting and would refuse to start with it.
plugin_allowlist() {
    local described
    described=$(as_root runuser -u postgres -- "$PGBIN/postgres" --describe-config 2>/dev/null || true)
    if [[ "$described" == *$'\n'output_plugin_libraries$'\t'* ]]; then
        echo "output_plugin_libraries = 'pgoutput, test_decoding, tidewatch'"
    fi
}

cluster_stop() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_root runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

# recreate_database DB PSQL-ARGS...: drop DB (if any) and create it empty. The decoder of async
# monitors holds the database's replication slot for a moment per poll and DROP DATABASE refuses
# while a slot is active (even WITH (FORCE)), and the scheduler reconnects meanwhile: stop the
# decoder and try again, up to 5 times.
recreate_database() {
    local db=$1 attempt; shift
    for attempt in 1 2 3 4 5; do
        "$@" -q -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = '$db' AND backend_type = 'tidewatch decoder'" >/dev/null
        if "$@" -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" 2>/dev/null; then break; fi
        [ "$attempt" -lt 5 ] || "$@" -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
        sleep 1
    done
    "$@" -q -d postgres -c "CREATE DATABASE \"$db\""
}

# Benchmark helpers (benches/*.sh): median of numbers on stdin, ratio a/b with 2 decimals, and the
# time in ms of one psql call made with the caller's PSQL array.
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
psql_ms() { "${PSQL[@]}" -c '\timing on' "$@" 2>&1 | awk '/^Time: / { t = $2 } END { print t }'; }

# Citus (distributed PostgreSQL) for the scale-out tests and benchmarks; never part of the
# product. citus_install builds and installs Citus 13.2.2 into the PostgreSQL of $PG_CONFIG (the
# private copy of use_private_pg, where the test command runs) with ../shared/citus/install.sh
# (TIDEWATCH_SHARED overrides the folder). The build stays in that copy, so later runs skip it.
# It fails, saying why, when the script is absent or the build fails; callers skip.
citus_install() {
    local script=${TIDEWATCH_SHARED:-$REPO/../shared}/citus/install.sh
    if [ ! -f "$script" ]; then
        echo "Citus not available: $script not found" >&2
        return 1
    fi
    if ! as_root env PG_CONFIG="$PG_CONFIG" bash "$script" >&2; then
        echo "Citus not available: $script failed" >&2
        return 1
    fi
}

# citus_start DIR PORT DBNAME: a coordinator on 127.0.0.1:PORT and two workers on PORT+1 and
# PORT+2, each its own cluster owned by postgres under DIR/node0..2, with citus and tidewatch
# preloaded (citus first, as it requires) and tidewatch's scheduler in DBNAME.
citus_start() {
    local dir=$1 port=$2 db=$3 i
    for i in 0 1 2; do
        cluster_start "$dir/node$i" $((port + i)) "$db" "citus,tidewatch" "max_prepared_transactions = 100
max_connections = 100
citus.node_conninfo = 'sslmode=disable'"
    done
}

citus_stop() {
    local dir=$1 i
    for i in 0 1 2; do cluster_stop "$dir/node$i"; done
}

# citus_db PORT DBNAME: (re)create DBNAME on the three nodes, CREATE EXTENSION citus on each,
# register the workers with the coordinator, then CREATE EXTENSION tidewatch on the
# coordinator, which Citus propagates to the workers: the order docs/scale-out.md gives.
citus_db() {
    local port=$1 db=$2 i
    local q=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)
    for i in 0 1 2; do
        recreate_database "$db" "${q[@]}" -p $((port + i))
        "${q[@]}" -p $((port + i)) -d "$db" -c "CREATE EXTENSION citus"
    done
    "${q[@]}" -p "$port" -d "$db" \
        -c "SELECT citus_set_coordinator_host('127.0.0.1', $port)" \
        -c "SELECT citus_add_node('127.0.0.1', $((port + 1)))" \
        -c "SELECT citus_add_node('127.0.0.1', $((port + 2)))" \
        -c "CREATE EXTENSION tidewatch" >/dev/null
}

# DROP EXTENSION tidewatch CASCADE and CREATE EXTENSION, with a psql command line ($@): tried
# again for a while when the drop deadlocks with a job of an earlier run that is due as the
# server starts (a hypertable's maintenance; docs/jobs.md says why).
fresh_extension() {
    local try err
    err=$(mktemp)
    for try in 1 2 3 4 5 6 7 8 9 10; do
        if "$@" -c "DROP EXTENSION IF EXISTS tidewatch CASCADE" -c "CREATE EXTENSION tidewatch" 2>"$err"; then
            rm -f "$err"
            return 0
        fi
        grep -q "deadlock detected" "$err" || break
        say "DROP EXTENSION deadlocked with a running job (try $try); again in 3 s"
        sleep 3
    done
    cat "$err" >&2
    rm -f "$err"
    return 1
}
