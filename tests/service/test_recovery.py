"""Recovery: PostgreSQL restarts in the middle of a load and every acknowledged point is there
(exactly once); SIGTERM drains in-flight requests and exits 0 within 10 s."""
import signal
import subprocess
import threading
import time
import unittest
import urllib.error

from svctest import DB, DSN, Service, fresh_database, one, psql, require_service, restart_cluster, wait_for


@require_service
class Restart(unittest.TestCase):
    def test_cluster_restart_during_ingest_loses_and_doubles_nothing(self):
        fresh_database()
        svc = Service(pool_timeout="1s")
        writers, batches, per_batch = 4, 40, 50
        acked = [0] * writers
        failures = [0] * writers
        errors = []

        def writer(w):
            try:
                for b in range(batches):
                    points = [{"metric": "load", "labels": {"writer": str(w)}, "ts": 1772445600 + b * per_batch + i,
                               "value": b * per_batch + i} for i in range(per_batch)]
                    deadline = time.monotonic() + 90
                    while True:
                        try:
                            status, _, body = svc.post_json("/v1/metrics", points, timeout=30)
                        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                            status, body = None, str(e)
                        if status == 200:
                            acked[w] += per_batch
                            break
                        # Only "retry later" answers are acceptable while the database restarts.
                        if status not in (None, 503):
                            errors.append(f"writer {w} batch {b}: {status} {body}")
                            return
                        failures[w] += 1
                        if time.monotonic() > deadline:
                            errors.append(f"writer {w} batch {b}: still failing after 90 s: {body}")
                            return
                        time.sleep(0.2)
                    time.sleep(0.02)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"writer {w}: {e!r}")

        started = one("SELECT pg_postmaster_start_time()")
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        # Restart once some batches are in.
        self.assertTrue(wait_for(lambda: sum(acked) >= writers * per_batch * 3, 60, 0.05))
        restart_cluster()
        for t in threads:
            t.join(300)
        try:
            self.assertEqual(errors, [])
            self.assertNotEqual(one("SELECT pg_postmaster_start_time()"), started, "the cluster did not restart")
            self.assertGreater(sum(failures), 0, "no request saw the restart: the test did not test anything")
            total = writers * batches * per_batch
            self.assertEqual(sum(acked), total)
            # Every acknowledged point is there, once.
            self.assertEqual(psql("SELECT count(*), count(DISTINCT (labels, time)) FROM metrics WHERE metric = 'load'"),
                             [[str(total), str(total)]])
            for w in range(writers):
                self.assertEqual(one(f"SELECT sum(value)::bigint FROM metrics WHERE labels ->> 'writer' = '{w}'"),
                                 str(sum(range(batches * per_batch))))
            self.assertEqual(svc.get("/readyz", token=None)[0], 200)
        finally:
            svc.stop()


def hold_lock(seconds):
    p = subprocess.Popen(["psql", "-X", "-q", "-d", f"{DSN} dbname={DB}", "-c",
                          f"BEGIN; LOCK TABLE metrics IN EXCLUSIVE MODE; SELECT pg_sleep({seconds}); COMMIT;"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: one("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                "WHERE c.relname = 'metrics' AND l.mode = 'ExclusiveLock' AND l.granted") == "1", 10, 0.05)
    return p


@require_service
class Sigterm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()
        Service().stop()

    def test_sigterm_drains_in_flight_requests_and_exits_0(self):
        svc = Service()
        lock = hold_lock(3)
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", svc.post_json(
            "/v1/metrics", [{"metric": "inflight", "ts": 1772445600, "value": 1}])))
        t.start()
        time.sleep(0.5)
        start = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        code = svc.proc.wait(15)
        elapsed = time.monotonic() - start
        t.join()
        lock.wait()
        svc.stop()
        self.assertEqual(code, 0)
        self.assertLess(elapsed, 10)
        self.assertEqual(out["r"][0], 200, "the in-flight request was answered")
        self.assertEqual(one("SELECT count(*) FROM metrics WHERE metric = 'inflight'"), "1")
        self.assertIn("draining", svc.log)

    def test_sigterm_gives_up_on_a_stuck_request_within_10s_without_half_writes(self):
        svc = Service(shutdown_timeout="1s")
        lock = hold_lock(5)
        try:
            t = threading.Thread(target=lambda: self.assertRaises(Exception, svc.post_json, "/v1/metrics",
                                                                  [{"metric": "stuck", "ts": 1772445600, "value": 1}]))
            t.start()
            time.sleep(0.5)
            start = time.monotonic()
            svc.proc.send_signal(signal.SIGTERM)
            code = svc.proc.wait(15)
            self.assertEqual(code, 0)
            self.assertLess(time.monotonic() - start, 10)
            t.join()
        finally:
            lock.wait()
            svc.stop()
        # Not acknowledged, and not written: its transaction never committed.
        time.sleep(0.5)
        self.assertEqual(one("SELECT count(*) FROM metrics WHERE metric = 'stuck'"), "0")


if __name__ == "__main__":
    unittest.main()
