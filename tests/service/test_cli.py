"""The command line: --help documents every setting and its environment variable, check-config
validates and redacts, the TOML file loses to the environment, and `import` loads files through
COPY (counted against the files' contents, idempotent, all or nothing)."""
import json
import os
import subprocess
import tempfile
import unittest

from svctest import BIN, WRITE_TOKEN, fresh_database, one, psql, require_service, service_dsn

SETTINGS = ["TIDEWATCH_DATABASE_URL", "TIDEWATCH_LISTEN", "TIDEWATCH_WRITE_TOKENS", "TIDEWATCH_READ_TOKENS",
            "TIDEWATCH_METRICS_TABLE", "TIDEWATCH_LOGS_TABLE", "TIDEWATCH_MONITOR", "TIDEWATCH_MAX_BODY_BYTES",
            "TIDEWATCH_REQUEST_TIMEOUT", "TIDEWATCH_MAX_CONCURRENCY", "TIDEWATCH_POOL_SIZE", "TIDEWATCH_POOL_TIMEOUT",
            "TIDEWATCH_STATEMENT_TIMEOUT", "TIDEWATCH_SHUTDOWN_TIMEOUT", "TIDEWATCH_LOG", "TIDEWATCH_LOG_FORMAT",
            "TIDEWATCH_CONFIG"]


def run(*args, env=None, stdin=None):
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIDEWATCH_")}
    base.update(env or {})
    return subprocess.run([BIN, *args], env=base, capture_output=True, text=True, input=stdin, timeout=300)


@require_service
class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()
        cls.env = {"TIDEWATCH_DATABASE_URL": service_dsn(), "TIDEWATCH_WRITE_TOKENS": WRITE_TOKEN}
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name, text):
        p = os.path.join(self.tmp.name, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_help_documents_every_setting_without_showing_secrets(self):
        r = run("--help", env={"TIDEWATCH_WRITE_TOKENS": "visible-secret", "TIDEWATCH_DATABASE_URL": "password=pw-secret"})
        self.assertEqual(r.returncode, 0)
        for name in SETTINGS:
            self.assertIn(f"[env: {name}", r.stdout, name)
        for cmd in ("serve", "import", "check-config"):
            self.assertIn(cmd, r.stdout)
        self.assertNotIn("visible-secret", r.stdout)
        self.assertNotIn("pw-secret", r.stdout)
        r = run("import", "--help")
        self.assertIn("metrics", r.stdout)
        self.assertIn("logs", r.stdout)

    def test_check_config_validates_and_redacts(self):
        r = run("check-config", env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("connected as tidewatch_service", r.stdout)
        self.assertIn("extension         tidewatch", r.stdout)
        self.assertIn("password=<redacted>", r.stdout)
        self.assertNotIn(WRITE_TOKEN, r.stdout + r.stderr)
        self.assertNotIn("service-pw-it", r.stdout + r.stderr)
        r = run("check-config", "--offline", env={**self.env, "TIDEWATCH_WRITE_TOKENS": ""})
        self.assertEqual(r.returncode, 1)
        self.assertIn("TIDEWATCH_WRITE_TOKENS", r.stderr)
        r = run("check-config", env={**self.env, "TIDEWATCH_REQUEST_TIMEOUT": "3 fortnights"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("request_timeout", r.stderr)
        r = run("check-config", env={**self.env, "TIDEWATCH_MONITOR": "sometimes"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("sometimes", r.stderr)

    def test_the_environment_wins_over_the_file(self):
        toml = self.path("service.toml", 'listen = "127.0.0.1:1"\nmetrics_table = "from_file"\npool_size = 3\n'
                                         'write_tokens = ["a", "b"]\nrequest_timeout = "7s"\n')
        r = run("check-config", "--offline", "--config", toml,
                env={"TIDEWATCH_DATABASE_URL": service_dsn(), "TIDEWATCH_METRICS_TABLE": "from_env"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"metrics_table\s+from_env")
        self.assertRegex(r.stdout, r"listen\s+127\.0\.0\.1:1\n")
        self.assertRegex(r.stdout, r"pool_size\s+3\n")
        self.assertRegex(r.stdout, r"write_tokens\s+2 token")
        self.assertRegex(r.stdout, r"request_timeout\s+7s")
        bad = self.path("bad.toml", 'databse_url = "x"\n')
        r = run("check-config", "--offline", "--config", bad, env=self.env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("databse_url", r.stderr)

    def test_import_metrics_in_three_formats(self):
        psql("TRUNCATE metrics") if one("SELECT to_regclass('metrics')") else None
        csv = self.path("points.csv", "time,metric,labels,value\n" + "".join(
            f'2026-03-02T10:{i // 60:02d}:{i % 60:02d}Z,csv_m,"{{""b"": ""2"", ""a"": ""1""}}",{i * 0.5}\n' for i in range(3000)))
        jsonl = self.path("points.jsonl", "".join(
            json.dumps({"metric": "json_m", "labels": {"k": str(i % 4)}, "ts": 1772445600 + i, "value": -i}) + "\n"
            for i in range(2000)))
        lp = self.path("points.lp", "".join(f"lp_m,host=h{i % 2} value={i},other={i}i {1772445600 + i}000000000\n"
                                            for i in range(1000)))
        for path, n in ((csv, 3000), (jsonl, 2000), (lp, 2000)):
            r = run("import", "metrics", path, env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"imported {n} points", r.stdout)
            self.assertIn(f"{n} new, 0 already there", r.stdout)
        got = [(m, int(n), float(s)) for m, n, s in psql("SELECT metric, count(*), sum(value) FROM metrics GROUP BY 1 ORDER BY 1")]
        self.assertEqual(got, [("csv_m", 3000, sum(i * 0.5 for i in range(3000))), ("json_m", 2000, -sum(range(2000))),
                               ("lp_m", 1000, sum(range(1000))), ("lp_m_other", 1000, sum(range(1000)))])
        self.assertEqual(one("SELECT DISTINCT labels::text FROM metrics WHERE metric = 'csv_m'"), '{"a": "1", "b": "2"}')
        # Again: nothing new.
        r = run("import", "metrics", csv, env=self.env)
        self.assertIn("0 new, 3000 already there", r.stdout)
        # Standard input, with the format given.
        r = run("import", "metrics", "-", "--format", "line-protocol", "--precision", "s", env=self.env,
                stdin="stdin_m value=1 1772445600\nstdin_m value=2 1772445601\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(one("SELECT count(*) FROM metrics WHERE metric = 'stdin_m'"), "2")

    def test_a_bad_line_imports_nothing(self):
        before = one("SELECT count(*) FROM metrics") if one("SELECT to_regclass('metrics')") else "0"
        bad = self.path("bad.jsonl", "".join(json.dumps({"metric": "bad_m", "ts": 1772445600 + i, "value": i}) + "\n"
                                             for i in range(120000)) + '{"metric": "bad_m", "value": "NaN"}\n')
        r = run("import", "metrics", bad, env=self.env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("line 120001", r.stderr)
        self.assertIn("nothing imported", r.stderr)
        self.assertEqual(one("SELECT count(*) FROM metrics"), before)
        self.assertEqual(one("SELECT count(*) FROM metrics WHERE metric = 'bad_m'"), "0")

    def test_import_logs(self):
        jsonl = self.path("logs.jsonl", "".join(json.dumps({"ts": 1772445600 + i, "source": "etl", "message": f"line {i}"}) + "\n"
                                                for i in range(500)))
        text = self.path("logs.txt", "".join(f"plain {i}\n" for i in range(300)))
        r = run("import", "logs", jsonl, env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("imported 500 log lines", r.stdout)
        r = run("import", "logs", text, "--source", "files", env=self.env)
        self.assertIn("imported 300 log lines", r.stdout)
        self.assertEqual(psql("SELECT source, count(*) FROM logs GROUP BY 1 ORDER BY 1"), [["etl", "500"], ["files", "300"]])


if __name__ == "__main__":
    unittest.main()
