#!/usr/bin/env bash
# Every test of Tidewatch, as README.md describes and .ci/run calls:
#   1. crate unit and property tests (cargo test)
#   2. the doc-test runner's own unit tests; lints (cargo fmt --check, clippy -D warnings)
#   3. the extension's #[pg_test]s (cargo pgrx test pg15)
#   4. docs/*.md: every ```sql block executed against the installed extension
#   5. tests/: integration tests against a real cluster (scheduler, concurrency, COPY), and
#      test_citus.py: a Citus coordinator and two workers on TIDEWATCH_CITUS_PORT (25460) and the
#      next two ports, Citus built once into the private PostgreSQL copy by ../shared/citus/install.sh
#   6. tests/service/: the HTTP service's binary against the same cluster (ingest, queries,
#      bad input, limits, a cluster restart during ingest, SIGTERM, CLI, docs/service.md's curls)
#   7. grafana/: the demo database loaded into this cluster (tools/demo.sh load), then
#      tools/grafana_check: every provisioning file, dashboard and alert query checked and run as
#      tidewatch_reader, the dashboards type-checked with @grafana/schema, and the checker's own tests
# Ends with one line "total: N passed, M failed"; exits non-zero if anything failed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

TEST_DIR=${TIDEWATCH_TEST_DIR:-/var/tmp/tidewatch-test}
# The test clusters listen below the kernel's ephemeral port range (32768-60999), where no
# client socket of another connection can hold their ports: 25443 here, 25451 (tests/pgtest.py),
# 25460-25462 (Citus).
TEST_PORT=${TIDEWATCH_TEST_PORT:-25443}
passed=0 failed=0 stage_failed=()
LOG=$(mktemp -d)

# count LOGFILE: add up "N passed; M failed" (cargo), "doctest: N passed, M failed" and
# unittest's "Ran N tests" / "FAILED (failures=a, errors=b)".
count() {
    local f=$1 p q
    read -r p q < <(awk '
        /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) q += $i } }
        /^(doctest|grafana_check): [0-9]+ passed, [0-9]+ failed/ { p += $2; q += $4 }
        /^Ran [0-9]+ tests? in/ { ran += $2 }
        /^FAILED \(/ { s = $0; while (match(s, /(failures|errors)=[0-9]+/)) { n = substr(s, RSTART, RLENGTH); sub(/.*=/, "", n); uq += n; s = substr(s, RSTART + RLENGTH) } }
        END { print p + ran - uq, q + uq }' "$f")
    passed=$((passed + p)); failed=$((failed + q))
}

stage() {
    local name=$1; shift
    say "$name"
    local out="$LOG/$(echo "$name" | tr -c 'a-z0-9' '_').log"
    if "$@" 2>&1 | tee "$out"; then :; else
        stage_failed+=("$name")
        # A stage that failed without reporting a failed test still counts as one failure.
        grep -qE '([1-9][0-9]* failed|FAILED \()' "$out" || failed=$((failed + 1))
    fi
    count "$out"
}

ensure_deps
# The assistant's page is tested in headless Chromium (Debian's package, for the tests only; the
# demo does not need it). Without it that one test skips, saying so.
command -v chromium >/dev/null || apt_install chromium ||
    say "chromium could not be installed: the page test will skip"

stage "crate tests" cargo test --workspace --exclude tidewatch -j 2
stage "doc-test runner unit tests" python3 -m unittest discover -s tools/doctest -p 'test_*.py'

as_root install -d -o postgres -g postgres "$TEST_DIR"
# Everything below builds into, installs into and runs from a private copy of PostgreSQL:
# clusters this command did not start (the demo's, say) keep running untouched.
cluster_stop "$TEST_DIR/cluster"
use_private_pg "$TEST_DIR/pg"
# Lints: formatting, and clippy with -D warnings on every crate and on the extension with and
# without its test features (the lints declared in Cargo.toml: unwrap_used,
# undocumented_unsafe_blocks, ...).
lint() {
    cargo fmt --all --check || return 1
    cargo clippy -q --workspace --exclude tidewatch --all-targets -j 2 -- -D warnings || return 1
    (cd extension && cargo clippy -q --features pg15 -j 2 -- -D warnings &&
        cargo clippy -q --features "pg15 pg_test" --all-targets -j 2 -- -D warnings)
}
stage "lint" lint
stage "extension pg_tests" bash -c "cd extension && cargo pgrx test pg15 --runas postgres --pgdata '$TEST_DIR/pgrx'"

install_extension
cluster_start "$TEST_DIR/cluster" "$TEST_PORT" "doctest_jobs,doctest_anomaly,doctest_logs,tidewatch_it,tidewatch_svc,tidewatch_demo"
trap 'cluster_stop "$TEST_DIR/cluster"' EXIT
DSN="host=127.0.0.1 port=$TEST_PORT user=postgres"
stage "docs" python3 tools/doctest/run.py --dsn "$DSN dbname=postgres" docs/
# numpy for ../shared/tools/nab_score.py (the NAB scorer that test_nab.py runs), from PyPI.
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install -q numpy || true
stage "integration tests" env TIDEWATCH_DSN="$DSN" python3 -m unittest discover -s tests -p 'test_*.py' -v

# Grafana: the demo database in this cluster (8 days at 60 s: about 20 s), then every query run
# as tidewatch_reader; PyYAML and psycopg from PyPI, @grafana/schema and TypeScript from npm.
grafana_stage() {
    python3 -c 'import yaml, psycopg' 2>/dev/null || python3 -m pip install -q pyyaml 'psycopg[binary]' || return 1
    cargo build -q -p tidewatch-sample || return 1
    TIDEWATCH_SAMPLE_BIN="$CARGO_TARGET_DIR/debug/tidewatch-sample" TIDEWATCH_DEMO_DAYS=8 TIDEWATCH_DEMO_STEP=60 \
        bash tools/demo.sh load "$TEST_PORT" > "$LOG/grafana_demo.log" 2>&1 || { tail -30 "$LOG/grafana_demo.log"; return 1; }
    local reader="host=127.0.0.1 port=$TEST_PORT dbname=tidewatch_demo user=tidewatch_reader"
    local tsc=() npm_dir="${TIDEWATCH_NPM_DIR:-/var/tmp/tidewatch-grafana-npm}"
    if command -v npm >/dev/null; then tsc=(--tsc "$npm_dir"); export TIDEWATCH_NPM_DIR="$npm_dir"
    else echo "SKIP @grafana/schema type check: npm is not installed"; fi
    local rc=0
    python3 tools/grafana_check/check.py --dsn "$reader" --readme README.md --expect tools/grafana_check/demo_expectations.yaml \
        --extra-rules docs/grafana.md "${tsc[@]}" || rc=1
    TIDEWATCH_GRAFANA_DSN="$reader" python3 -W ignore -m unittest discover -s tools/grafana_check/tests -p 'test_*.py' || rc=1
    return $rc
}
stage "grafana" grafana_stage
# Last: its restart test restarts the cluster.
stage "service integration tests" bash -c "cargo build -q -p tidewatch-service -j 2 && \
    env TIDEWATCH_DSN='$DSN' TIDEWATCH_SERVICE_BIN='$CARGO_TARGET_DIR/debug/tidewatch-service' \
        TIDEWATCH_CLUSTER_DATA='$TEST_DIR/cluster/data' PGBIN='$PGBIN' \
        python3 -m unittest discover -s tests/service -t tests/service -p 'test_*.py' -v"

if [ ${#stage_failed[@]} -gt 0 ]; then
    say "failed stages: ${stage_failed[*]}"
fi
echo "total: $passed passed, $failed failed"
[ ${#stage_failed[@]} -eq 0 ] && [ "$failed" -eq 0 ]
