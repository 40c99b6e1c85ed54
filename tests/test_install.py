"""Installing a new build under a running server must not take it down.

`cargo pgrx install` rewrites tidewatch.so in place; a server that has the library mapped (it is
preloaded) then dies of SIGBUS, and once the startup process fails the postmaster shuts down for
good. `tools/install.sh` (and every install of the README's commands) writes each file beside its
destination and renames it over the old one. Checked here on a private cluster with an async
monitor whose decoder runs, while a writer keeps inserting.
"""
import os
import subprocess
import threading
import unittest

from pgtest import REPO, require_cluster, spare_cluster

PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/bin/pg_config")


def libdir():
    return subprocess.run([PG_CONFIG, "--pkglibdir"], capture_output=True, text=True, check=True).stdout.strip()


@require_cluster
class InstallUnderARunningServerTest(unittest.TestCase):
    def test_a_running_cluster_with_an_async_monitor_survives_an_install(self):
        with spare_cluster("install") as c:
            c.psql("CREATE EXTENSION tidewatch;"
                   "CREATE TABLE live (ts timestamptz NOT NULL, sat text, value float8);"
                   "SELECT tidewatch.create_hypertable('live', 'ts', chunk_time_interval => interval '1 day')")
            c.psql("SELECT tidewatch.monitor('m', 'live', 'value', '{sat}', 'ewma', mode => 'async');"
                   "SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.monitors")
            c.psql("INSERT INTO live SELECT timestamptz '2026-01-01' + i * interval '1 second', 'SAT1', random()"
                   " FROM generate_series(1, 1000) i")
            c.psql("SELECT tidewatch.monitor_wait(interval '60 seconds')")
            postmaster = c.one("SELECT pg_postmaster_start_time()")
            before = os.stat(os.path.join(libdir(), "tidewatch.so")).st_ino

            stop = threading.Event()
            written = []

            def writer():
                i = 0
                while not stop.is_set():
                    i += 1
                    c.psql(f"INSERT INTO live SELECT timestamptz '2026-01-02' + ({i} * 100 + k) * interval '1 second',"
                           f" 'SAT2', random() FROM generate_series(1, 100) k")
                    written.append(100)

            w = threading.Thread(target=writer)
            w.start()
            try:
                proc = subprocess.run(["bash", os.path.join(REPO, "tools", "install.sh"), "--pg-config", PG_CONFIG],
                                      capture_output=True, text=True, timeout=1800)
            finally:
                stop.set()
                w.join()
            self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
            self.assertNotEqual(os.stat(os.path.join(libdir(), "tidewatch.so")).st_ino, before,
                                "the library was not replaced: the test proves nothing")
            self.assertGreater(sum(written), 0)
            # The same postmaster (no crash and restart), every process alive, every row scored.
            self.assertEqual(c.one("SELECT pg_postmaster_start_time()"), postmaster)
            c.psql("SELECT tidewatch.monitor_wait(interval '60 seconds')")
            self.assertEqual(c.psql("SELECT (SELECT count(*) FROM live), (SELECT sum(n) FROM tidewatch.monitor_state)"),
                             [[str(1000 + sum(written))] * 2])
            log = open(os.path.join(c.dir, "server.log"), errors="replace").read()
            self.assertNotIn("terminated by signal", log)
            self.assertNotIn("shutting down due to", log)


if __name__ == "__main__":
    unittest.main()
