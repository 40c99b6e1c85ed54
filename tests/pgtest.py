"""Helpers for integration tests against a real cluster: psql subprocesses, nothing to install.

The cluster is given by TIDEWATCH_DSN (a libpq conninfo without dbname); tools/test.sh starts
one with tidewatch preloaded and its scheduler on database `tidewatch_it`. Without it the tests
skip, saying why.
"""
import os
import subprocess
import time
import unittest

DSN = os.environ.get("TIDEWATCH_DSN")
DB = "tidewatch_it"


def require_cluster(cls):
    if not DSN:
        return unittest.skip("TIDEWATCH_DSN is not set; run tools/test.sh")(cls)
    return cls


def psql(sql, db=DB, check=True, timeout=600):
    """Run SQL, return stdout as a list of rows (unaligned, tab-separated)."""
    proc = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", f"{DSN} dbname={db}", "-c", sql],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PGTZ": "UTC", "LC_MESSAGES": "C"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}\nSQL: {sql[:500]}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line != ""]


def one(sql, db=DB):
    rows = psql(sql, db)
    return rows[0][0] if rows else None


def fresh_database():
    # The scheduler runs in this database: a scheduler or job worker that connects while
    # DROP DATABASE ... WITH (FORCE) waits for the others to exit is not terminated by it, and the
    # drop fails with "being accessed by other users". Such a worker ends at the next drop's
    # SIGTERM, so try again a few times.
    # The decoder of async monitors holds the database's replication slot for a moment per poll,
    # and DROP DATABASE refuses while a slot is active (even WITH (FORCE)): stop it first.
    for attempt in range(5):
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{DB}'"
             " AND backend_type = 'tidewatch decoder'", db="postgres")
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres", check=attempt == 4)
        if one(f"SELECT count(*) FROM pg_database WHERE datname = '{DB}'", db="postgres") == "0":
            break
        time.sleep(1)
    psql(f"CREATE DATABASE {DB}", db="postgres")
    psql("CREATE EXTENSION tidewatch")


def wait_for(predicate, timeout=45.0, every=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def run_concurrently(workers, work):
    """Run work(w) for w in range(workers) in threads at once; return the psql failures
    (deadlocks, unique violations, any error) as strings."""
    import threading
    errors = []

    def run(w):
        try:
            work(w)
        except AssertionError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
