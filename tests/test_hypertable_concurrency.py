"""No row is lost or hidden while rows arrive and maintenance moves them between partitions."""
import threading
import unittest

from pgtest import fresh_database, one, psql, require_cluster


@require_cluster
class HypertableConcurrency(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()

    def test_rows_stay_visible_while_maintenance_moves_them(self):
        psql("CREATE TABLE vis (ts timestamptz NOT NULL, v int);"
             "SELECT tidewatch.create_hypertable('vis', 'ts', interval '1 day');"
             # This test does the move itself, while a reader watches: keep the scheduler's
             # maintenance job (due at once) from doing it first.
             "SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.jobs WHERE hypertable = 'vis'::regclass;"
             # 200k rows over 40 past days: all land in the default partition.
             "INSERT INTO vis SELECT timestamptz '2020-01-01' + (i % 40) * interval '1 day' + (i % 997) * interval '1 minute', i"
             "  FROM generate_series(1, 200000) i;")
        self.assertEqual(one("SELECT count(*) FROM ONLY vis_default"), "200000")
        seen, stop = [], threading.Event()

        def reader():
            while not stop.is_set():
                seen.append(one("SELECT count(*) || ':' || sum(v) FROM vis"))

        t = threading.Thread(target=reader)
        t.start()
        try:
            moved = one("SELECT rows_moved FROM tidewatch.run_maintenance('vis')")
        finally:
            stop.set()
            t.join()
        self.assertEqual(moved, "200000")
        expected = f"200000:{200000 * 200001 // 2}"
        self.assertGreater(len(seen), 0, "the reader should have run during maintenance")
        self.assertEqual(set(seen), {expected})
        self.assertEqual(one("SELECT count(*) FROM ONLY vis_default"), "0")
        self.assertEqual(one("SELECT count(*) FROM tidewatch.show_chunks('vis', older_than => timestamptz '2021-01-01')"), "40")

    def test_concurrent_writers_lose_nothing(self):
        psql("CREATE TABLE w (ts timestamptz NOT NULL, writer int, n int);"
             "SELECT tidewatch.create_hypertable('w', 'ts', interval '1 hour');")
        per_writer, writers = 40, 3

        def writer(k):
            for n in range(per_writer):
                # Each batch spreads over hours nobody has a chunk for yet, and over now.
                psql(f"INSERT INTO w SELECT timestamptz '2019-06-01' + ((s * 7 + {n}) % 300) * interval '1 hour', {k}, {n}"
                     f" FROM generate_series(1, 50) s UNION ALL SELECT now(), {k}, {n}")

        def maintainer():
            for _ in range(6):
                psql("SELECT * FROM tidewatch.run_maintenance('w', max_chunks => 40)")

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)] + [threading.Thread(target=maintainer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = writers * per_writer * 51
        self.assertEqual(one("SELECT count(*) FROM w"), str(total))
        psql("SELECT * FROM tidewatch.run_maintenance('w')")
        self.assertEqual(one("SELECT count(*) FROM w"), str(total))
        self.assertEqual(one("SELECT count(*) FROM ONLY w_default"), "0")

    def test_copy_with_any_timestamp(self):
        psql("CREATE TABLE c (ts timestamptz NOT NULL, v float8);"
             "SELECT tidewatch.create_hypertable('c', 'ts', interval '1 day');")
        rows = []
        for i in range(20000):
            if i % 20 == 0:  # 5% far outside the premade chunks, both ways
                ts = f"{1970 + i % 200}-0{1 + i % 9}-1{i % 10} 12:00:00+00"
            else:
                ts = "now"
            rows.append(f"{ts},{i}")
        rows.append("infinity,-1")
        data = "\n".join(rows) + "\n"
        import subprocess, os
        from pgtest import DSN, DB
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{DSN} dbname={DB}",
                        "-c", "COPY c FROM STDIN WITH (FORMAT csv)"], input=data, text=True, check=True)
        self.assertEqual(one("SELECT count(*) FROM c"), "20001")
        psql("SELECT * FROM tidewatch.run_maintenance('c')")
        self.assertEqual(one("SELECT count(*) FROM c"), "20001")
        # Only the row at infinity stays in the default partition.
        self.assertEqual(one("SELECT count(*) FROM ONLY c_default"), "1")
        self.assertEqual(one("SELECT sum(v) FROM c"), str(sum(range(20000)) - 1))


if __name__ == "__main__":
    unittest.main()
