"""The background scheduler runs due jobs as their owner, backs off on failure, and survives a
job that kills its own process."""
import os
import signal
import subprocess
import unittest

from pgtest import DB, DSN, fresh_database, one, psql, require_cluster, wait_for


@require_cluster
class Scheduler(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()
        psql("DROP ROLE IF EXISTS tw_it_owner; CREATE ROLE tw_it_owner LOGIN;", db="postgres")
        psql("CREATE TABLE ran (job_id int, who text, at timestamptz DEFAULT clock_timestamp());"
             "GRANT ALL ON ran TO tw_it_owner; GRANT CREATE ON SCHEMA public TO tw_it_owner;"
             "CREATE PROCEDURE note(job_id int, config jsonb) LANGUAGE sql"
             "  AS $$ INSERT INTO ran (job_id, who) VALUES (job_id, current_user) $$;"
             "CREATE PROCEDURE suicide(job_id int, config jsonb) LANGUAGE sql"
             "  AS $$ SELECT pg_terminate_backend(pg_backend_pid()) $$;"
             "CREATE FUNCTION fails(job_id int, config jsonb) RETURNS void LANGUAGE sql AS 'SELECT 1/0';")

    def test_job_runs_as_its_owner(self):
        job = one("SET ROLE tw_it_owner; SELECT tidewatch.add_job('note', interval '1 second')")
        self.assertTrue(wait_for(lambda: int(one(f"SELECT count(*) FROM ran WHERE job_id = {job}")) >= 2),
                        "the scheduler did not run the job twice within the timeout")
        self.assertEqual(psql(f"SELECT DISTINCT who FROM ran WHERE job_id = {job}"), [["tw_it_owner"]])
        psql(f"SELECT tidewatch.delete_job({job})")

    def test_a_job_of_a_role_that_may_not_log_in_runs_as_it(self):
        # Group roles that own the tables are usually NOLOGIN; their jobs (and so their monitors'
        # and drift monitors' jobs) used to fail at connection: "role ... is not permitted to log in".
        psql("DROP OWNED BY tw_it_group", check=False)
        psql("DROP ROLE IF EXISTS tw_it_group; CREATE ROLE tw_it_group NOLOGIN;"
             "ALTER ROLE tw_it_group SET application_name = 'group job';"
             f"ALTER ROLE tw_it_group IN DATABASE {DB} SET statement_timeout = '7s'", db="postgres")
        psql("GRANT ALL ON ran TO tw_it_group;"
             "CREATE PROCEDURE note_as(job_id int, config jsonb) LANGUAGE plpgsql AS $$ BEGIN"
             "  INSERT INTO ran (job_id, who) VALUES (job_id, current_user || ' ' || current_setting('application_name')"
             "                                         || ' ' || current_setting('statement_timeout'));"
             "  BEGIN SET ROLE postgres; INSERT INTO ran (job_id, who) VALUES (job_id, 'escalated');"
             "  EXCEPTION WHEN OTHERS THEN INSERT INTO ran (job_id, who) VALUES (job_id, 'refused: ' || SQLERRM); END;"
             " END $$; GRANT EXECUTE ON PROCEDURE note_as(int, jsonb) TO tw_it_group")
        job = one("SET ROLE tw_it_group; SELECT tidewatch.add_job('note_as', interval '1 second')")
        try:
            ok = wait_for(lambda: int(one(f"SELECT count(*) FROM ran WHERE job_id = {job}")) >= 2, timeout=20)
            self.assertTrue(ok, "the scheduler did not run the NOLOGIN role's job: "
                            + str(psql(f"SELECT last_status, last_error FROM tidewatch.job_stats WHERE job_id = {job}")))
            who = {r[0] for r in psql(f"SELECT who FROM ran WHERE job_id = {job}")}
            self.assertIn("tw_it_group group job 7s", who)  # as the role, with its settings
            self.assertNotIn("escalated", who)  # and it cannot take the session's superuser back
            self.assertTrue(any(w.startswith("refused: cannot set parameter") for w in who), who)
            self.assertEqual(one(f"SELECT total_failures FROM tidewatch.job_stats WHERE job_id = {job}"), "0")
        finally:
            psql(f"SELECT tidewatch.delete_job({job})")

    def test_failures_back_off_and_crashes_are_recorded(self):
        failing = one("SELECT tidewatch.add_job('fails', interval '1 hour', retry_period => interval '1 second')")
        crashing = one("SELECT tidewatch.add_job('suicide', interval '1 hour', retry_period => interval '1 hour')")
        healthy = one("SELECT tidewatch.add_job('note', interval '1 second')")
        self.assertTrue(wait_for(lambda: int(one(f"SELECT total_failures FROM tidewatch.job_stats WHERE job_id = {failing}")) >= 3))
        self.assertTrue(wait_for(lambda: one(f"SELECT last_status FROM tidewatch.job_stats WHERE job_id = {crashing}") == "failed"))
        # Backoff doubles: the gap before the 3rd try is about twice the gap before the 2nd.
        stat = psql(f"SELECT last_error, consecutive_failures FROM tidewatch.job_stats WHERE job_id = {failing}")[0]
        self.assertEqual(stat[0], "division by zero")
        err = one(f"SELECT last_error FROM tidewatch.job_stats WHERE job_id = {crashing}")
        self.assertIn("terminat", err + one(f"SELECT coalesce(last_error_sqlstate, '') FROM tidewatch.job_stats WHERE job_id = {crashing}"))
        # The scheduler is still alive: the healthy job keeps running after the crash.
        before = int(one(f"SELECT count(*) FROM ran WHERE job_id = {healthy}"))
        self.assertTrue(wait_for(lambda: int(one(f"SELECT count(*) FROM ran WHERE job_id = {healthy}")) >= before + 2))
        for j in (failing, crashing, healthy):
            psql(f"SELECT tidewatch.delete_job({j})")

    def test_a_hanging_job_is_stopped_at_its_max_runtime_and_delays_no_other(self):
        psql("CREATE PROCEDURE hang(job_id int, config jsonb) LANGUAGE sql AS $$ SELECT pg_sleep(600) $$;"
             "GRANT EXECUTE ON PROCEDURE hang(int, jsonb) TO PUBLIC")
        hanging = one("SELECT tidewatch.add_job('hang', interval '1 hour', max_runtime => interval '3 seconds',"
                      " retry_period => interval '1 hour')")
        healthy = one("SELECT tidewatch.add_job('note', interval '1 second')")
        # While the hanging job runs (its worker sleeps), the healthy one keeps its cadence.
        self.assertTrue(wait_for(lambda: int(one(f"SELECT count(*) FROM ran WHERE job_id = {healthy}")) >= 2, timeout=15),
                        "a hanging job held up the others")
        # Stopped within its max_runtime plus a scheduler tick or two, and recorded as such.
        self.assertTrue(wait_for(lambda: one(f"SELECT last_status FROM tidewatch.job_stats WHERE job_id = {hanging}") == "failed",
                                 timeout=20))
        err, state, took = psql(f"SELECT last_error, last_error_sqlstate, extract(epoch FROM last_duration)"
                                f" FROM tidewatch.job_stats WHERE job_id = {hanging}")[0]
        self.assertIn("max_runtime", err)
        self.assertEqual(state, "57014")
        self.assertGreaterEqual(float(took), 3.0)
        self.assertLess(float(took), 10.0)
        self.assertEqual(one("SELECT max_runtime FROM tidewatch.jobs WHERE job_id = " + hanging), "00:00:03")
        for j in (hanging, healthy):
            psql(f"SELECT tidewatch.delete_job({j})")

    def test_a_job_whose_worker_starts_late_is_neither_failed_nor_lost(self):
        # The postmaster starts registered workers on its own time (later under load). Stopping
        # it with SIGSTOP holds the job's worker "registered, not yet started" for several
        # scheduler ticks (naptime 500 ms); the scheduler once took that for a dead worker,
        # recorded a crash, and let the job run untracked (never stopped at its max_runtime).
        with open(os.path.join(one("SHOW data_directory"), "postmaster.pid")) as pidfile:
            pm = int(pidfile.readline())
        session = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", f"{DSN} dbname={DB}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            # The session is connected before the postmaster stops (it accepts none while stopped).
            session.stdin.write("SELECT 'connected';\n")
            session.stdin.flush()
            self.assertEqual(session.stdout.readline().strip(), "connected")
            os.kill(pm, signal.SIGSTOP)
            try:
                session.stdin.write("SELECT tidewatch.add_job('note', interval '1 hour', max_runtime => interval '1 minute');\n"
                                    "SELECT pg_sleep(3); SELECT 'slept';\n")
                session.stdin.flush()
                job = session.stdout.readline().strip()
                while session.stdout.readline().strip() != "slept":
                    pass
            finally:
                os.kill(pm, signal.SIGCONT)
        finally:
            session.stdin.close()
            session.wait(timeout=30)
            session.stdout.close()
        self.assertTrue(wait_for(lambda: one(f"SELECT last_status FROM tidewatch.job_stats WHERE job_id = {job}") == "success"))
        runs, failures = psql(f"SELECT total_runs, total_failures FROM tidewatch.job_stats WHERE job_id = {job}")[0]
        self.assertEqual((runs, failures), ("1", "0"))
        self.assertEqual(one(f"SELECT count(*) FROM ran WHERE job_id = {job}"), "1")
        psql(f"SELECT tidewatch.delete_job({job})")

    def test_max_runtime_must_be_positive(self):
        with self.assertRaises(AssertionError) as e:
            psql("SELECT tidewatch.add_job('note', interval '1 hour', max_runtime => interval '0')")
        self.assertIn("invalid max_runtime", str(e.exception))


if __name__ == "__main__":
    unittest.main()
