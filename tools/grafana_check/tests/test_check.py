"""The validator's own tests: every rule has a fixture that breaks it, so a broken dashboard,
rule or compose file is proven to be caught. Each test copies the real grafana/ (and
docker/compose.yaml) into a temporary tree, applies one breakage, and expects a failure naming it.
Query-running tests need TIDEWATCH_GRAFANA_DSN (the demo database as tidewatch_reader)."""
import copy
import io
import json
import os
import shutil
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import check  # noqa: E402
import macros  # noqa: E402
import yaml  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
DSN = os.environ.get("TIDEWATCH_GRAFANA_DSN")
FIXTURES = os.path.join(HERE, "fixtures")


class Tree:
    """A copy of grafana/ and docker/compose.yaml to break."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="grafana-check-")
        shutil.copytree(os.path.join(REPO, "grafana"), os.path.join(self.dir, "grafana"))
        os.makedirs(os.path.join(self.dir, "docker"))
        shutil.copy(os.path.join(REPO, "docker", "compose.yaml"), os.path.join(self.dir, "docker"))
        shutil.copy(os.path.join(REPO, "README.md"), self.dir)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def edit_json(self, rel, fn):
        with open(self.path(*rel.split("/"))) as f:
            doc = json.load(f)
        fn(doc)
        with open(self.path(*rel.split("/")), "w") as f:
            json.dump(doc, f)

    def edit_yaml(self, rel, fn):
        with open(self.path(*rel.split("/"))) as f:
            doc = yaml.safe_load(f)
        fn(doc)
        with open(self.path(*rel.split("/")), "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)

    def run(self, *extra):
        out = io.StringIO()
        with redirect_stdout(out):
            rc = check.main(["--root", self.path("grafana"), "--readme", self.path("README.md"), *extra])
        return rc, out.getvalue()

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


DS = "grafana/provisioning/datasources/tidewatch.yaml"
RULES = "grafana/provisioning/alerting/rules.yaml"
NOTIF = "grafana/provisioning/alerting/notifications.yaml"
FLEET = "grafana/dashboards/fleet-overview.json"


def rule0(doc):
    return doc["groups"][0]["rules"][0]


# (name, file to edit, kind, breakage, text the failure must contain)
BREAKAGES = [
    ("datasource without uid", DS, "yaml", lambda d: d["datasources"][0].pop("uid"), "needs a fixed uid"),
    ("datasource uid too long", DS, "yaml", lambda d: d["datasources"][0].update(uid="x" * 41), "at most 40"),
    ("database at the top level", DS, "yaml", lambda d: d["datasources"][0].update(database=d["datasources"][0]["jsonData"].pop("database")), "jsonData.database is required"),
    ("two default datasources", DS, "yaml", lambda d: d["datasources"].append(dict(d["datasources"][0], uid="other", name="Other")), "second default"),
    ("bad sslmode", DS, "yaml", lambda d: d["datasources"][0]["jsonData"].update(sslmode="sometimes"), "sslmode"),
    ("timeInterval does not parse", DS, "yaml", lambda d: d["datasources"][0]["jsonData"].update(timeInterval="soon"), "timeInterval"),
    ("env var not in compose", DS, "yaml", lambda d: d["datasources"][0]["jsonData"].update(database="$NOT_IN_COMPOSE"), "$NOT_IN_COMPOSE is not set"),
    ("dashboard uid with a space", FLEET, "json", lambda d: d.update(uid="tidewatch fleet"), "uid 'tidewatch fleet'"),
    ("duplicate dashboard uid", "grafana/dashboards/series.json", "json", lambda d: d.update(uid="tidewatch-fleet"), "used by"),
    ("schemaVersion 30", FLEET, "json", lambda d: d.update(schemaVersion=30), "must be 41 or 42"),
    ("duplicate panel id", FLEET, "json", lambda d: d["panels"][1].update(id=d["panels"][0]["id"]), "panel ids must be unique"),
    ("gridPos w 25", FLEET, "json", lambda d: d["panels"][0]["gridPos"].update(w=25), "gridPos"),
    ("gridPos without y", FLEET, "json", lambda d: d["panels"][0]["gridPos"].pop("y"), "gridPos"),
    ("${DS_...} placeholder", FLEET, "json", lambda d: d["panels"][0].update(datasource={"uid": "${DS_TIDEWATCH}"}), "placeholders"),
    ("unknown datasource uid", FLEET, "json", lambda d: d["panels"][0]["targets"][0]["datasource"].update(uid="nope"), "'nope' is not provisioned"),
    ("duplicate refId", FLEET, "json", lambda d: d["panels"][0]["targets"].append(copy.deepcopy(d["panels"][0]["targets"][0])), "unique refIds"),
    ("bad format", FLEET, "json", lambda d: d["panels"][0]["targets"][0].update(format="csv"), "format 'csv'"),
    ("rule uid too long", RULES, "yaml", lambda d: rule0(d).update(uid="r" * 41), "at most 40"),
    ("duplicate rule uid", RULES, "yaml", lambda d: d["groups"][0]["rules"][1].update(uid=rule0(d)["uid"]), "uid used twice"),
    ("bad noDataState", RULES, "yaml", lambda d: rule0(d).update(noDataState="Fine"), "noDataState 'Fine'"),
    ("bad execErrState", RULES, "yaml", lambda d: rule0(d).update(execErrState="Panic"), "execErrState 'Panic'"),
    ("for does not parse", RULES, "yaml", lambda d: rule0(d).update({"for": "5 minutes"}), "for '5 minutes'"),
    ("interval not a multiple of 10s", RULES, "yaml", lambda d: d["groups"][0].update(interval="15s"), "multiple of 10s"),
    ("condition names no refId", RULES, "yaml", lambda d: rule0(d).update(condition="Z"), "condition 'Z'"),
    ("expression references a missing refId", RULES, "yaml", lambda d: rule0(d)["data"][1]["model"].update(expression="B"), "expression 'B'"),
    ("unknown expression type", RULES, "yaml", lambda d: rule0(d)["data"][1]["model"].update(type="magic"), "expression type 'magic'"),
    ("bad evaluator", RULES, "yaml", lambda d: rule0(d)["data"][1]["model"]["conditions"][0]["evaluator"].update(type="bigger"), "evaluator"),
    ("bad reducer", RULES, "yaml", lambda d: rule0(d)["data"].append({"refId": "B", "datasourceUid": "__expr__", "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "avg"}}), "reducer 'avg'"),
    ("rule datasource not provisioned", RULES, "yaml", lambda d: rule0(d)["data"][0].update(datasourceUid="elsewhere"), "neither provisioned nor __expr__"),
    ("relativeTimeRange from < to", RULES, "yaml", lambda d: rule0(d)["data"][0].update(relativeTimeRange={"from": 0, "to": 600}), "relativeTimeRange"),
    ("relativeTimeRange as text", RULES, "yaml", lambda d: rule0(d)["data"][0].update(relativeTimeRange={"from": "10m", "to": 0}), "relativeTimeRange"),
    ("dashboard uid without panel id", RULES, "yaml", lambda d: rule0(d)["annotations"].pop("__panelId__"), "go together"),
    ("annotation names a missing panel", RULES, "yaml", lambda d: rule0(d)["annotations"].update(__panelId__="99"), "is not a panel"),
    ("dashboard variable in an alert query", RULES, "yaml", lambda d: rule0(d)["data"][0]["model"].update(rawSql=rule0(d)["data"][0]["model"]["rawSql"] + " AND monitor = '$monitor'"), "no dashboard variables"),
    ("policy names a missing receiver", NOTIF, "yaml", lambda d: d["policies"][0].update(receiver="pager"), "'pager' is not a provisioned contact point"),
    ("route names a missing receiver", NOTIF, "yaml", lambda d: d["policies"][0]["routes"][0].update(receiver="pager"), "'pager' is not"),
    ("bad matcher", NOTIF, "yaml", lambda d: d["policies"][0]["routes"][0].update(object_matchers=[["severity", "==", "critical"]]), "matcher"),
    ("webhook without url", NOTIF, "yaml", lambda d: d["contactPoints"][0]["receivers"][0]["settings"].pop("url"), "needs settings.url"),
    ("compose drops an env var", "docker/compose.yaml", "yaml", lambda d: d["services"]["grafana"]["environment"].pop("TIDEWATCH_PG_HOST"), "$TIDEWATCH_PG_HOST"),
    ("compose mounts a missing path", "docker/compose.yaml", "yaml", lambda d: d["services"]["grafana"]["volumes"].append("../grafana/nothing:/x"), "does not exist"),
    ("compose does not mount the dashboards", "docker/compose.yaml", "yaml", lambda d: d["services"]["grafana"]["volumes"].pop(1), "does not mount"),
    ("README port differs", "docker/compose.yaml", "yaml", lambda d: d["services"]["grafana"].update(ports=["127.0.0.1:3301:3000"]), "port 3301"),
    ("README credentials differ", "docker/compose.yaml", "yaml", lambda d: d["services"]["grafana"]["environment"].update(GF_SECURITY_ADMIN_PASSWORD="${GRAFANA_ADMIN_PASSWORD:-s3cret}"), "s3cret"),
    ("depends on an unhealthy-less service", "docker/compose.yaml", "yaml", lambda d: d["services"]["postgres"].pop("healthcheck"), "no healthcheck"),
    ("datasource without type", DS, "yaml", lambda d: d["datasources"][0].pop("type"), "needs name and type"),
    ("two datasources with one name", DS, "yaml", lambda d: d["datasources"].append(dict(d["datasources"][0], uid="other", isDefault=False)), "name used twice"),
    ("postgresVersion as text", DS, "yaml", lambda d: d["datasources"][0]["jsonData"].update(postgresVersion="15"), "postgresVersion"),
    ("maxOpenConns negative", DS, "yaml", lambda d: d["datasources"][0]["jsonData"].update(maxOpenConns=-1), "maxOpenConns"),
    ("timescaledb as text", DS, "yaml", lambda d: d["datasources"][0]["jsonData"].update(timescaledb="yes"), "timescaledb must be a boolean"),
    ("no password", DS, "yaml", lambda d: d["datasources"][0].pop("secureJsonData"), "password is missing"),
    ("provider without path", "grafana/provisioning/dashboards/tidewatch.yaml", "yaml", lambda d: d["providers"][0]["options"].pop("path"), "options.path is required"),
    ("provider folder with foldersFromFilesStructure", "grafana/provisioning/dashboards/tidewatch.yaml", "yaml", lambda d: d["providers"][0].update(folder="X"), "cannot be combined"),
    ("provider of another type", "grafana/provisioning/dashboards/tidewatch.yaml", "yaml", lambda d: d["providers"][0].update(type="git"), "type must be file"),
    ("two dashboards with one title", "grafana/dashboards/series.json", "json", lambda d: d.update(title="Tidewatch / Fleet overview"), "unique within its folder"),
    ("panel without type", FLEET, "json", lambda d: d["panels"][0].pop("type"), "panel needs a type"),
    ("target without rawSql", FLEET, "json", lambda d: d["panels"][0]["targets"][0].pop("rawSql"), "without rawSql"),
    ("two variables with one name", FLEET, "json", lambda d: d["templating"]["list"].append(dict(d["templating"]["list"][0])), "variable names must be unique"),
    ("variable of unknown type", FLEET, "json", lambda d: d["templating"]["list"][0].update(type="magic"), "type 'magic'"),
    ("query variable without query", FLEET, "json", lambda d: d["templating"]["list"][0].update(query=""), "needs its query"),
    ("annotation without query", "grafana/dashboards/series.json", "json", lambda d: d["annotations"]["list"][1]["target"].pop("rawSql"), "needs target.rawSql"),
    ("annotation with an unknown datasource", "grafana/dashboards/series.json", "json", lambda d: d["annotations"]["list"][1].update(datasource={"uid": "gone"}), "'gone' is not provisioned"),
    ("two rules with one title", RULES, "yaml", lambda d: d["groups"][0]["rules"][1].update(title=rule0(d)["title"]), "unique within the folder"),
    ("group without folder", RULES, "yaml", lambda d: d["groups"][0].pop("folder"), "needs name and folder"),
    ("label that is not a string", RULES, "yaml", lambda d: rule0(d)["labels"].update(priority=1), "label priority must be a string"),
    ("math on a missing refId", RULES, "yaml", lambda d: rule0(d)["data"].append({"refId": "M", "datasourceUid": "__expr__", "model": {"refId": "M", "type": "math", "expression": "$A + $Q"}}), "math references $Q"),
    ("rule without data", RULES, "yaml", lambda d: rule0(d).update(data=[]), "data needs queries"),
    ("rule query without rawSql", RULES, "yaml", lambda d: rule0(d)["data"][0]["model"].pop("rawSql"), "without rawSql"),
    ("annotation names a missing dashboard", RULES, "yaml", lambda d: rule0(d)["annotations"].update(__dashboardUid__="nope"), "'nope' is not a provisioned dashboard"),
    ("notification settings name a missing receiver", RULES, "yaml", lambda d: rule0(d).update(notification_settings={"receiver": "pager"}), "notification_settings.receiver"),
    ("contact point without name", NOTIF, "yaml", lambda d: d["contactPoints"][0].pop("name"), "needs a name"),
    ("receiver uid with a space", NOTIF, "yaml", lambda d: d["contactPoints"][0]["receivers"][0].update(uid="a b"), "receiver uid"),
    ("unknown receiver type", NOTIF, "yaml", lambda d: d["contactPoints"][0]["receivers"][0].update(type="carrier-pigeon"), "unknown receiver type"),
    ("route duration does not parse", NOTIF, "yaml", lambda d: d["policies"][0].update(group_wait="soon"), "group_wait 'soon'"),
    ("group_by not a list", NOTIF, "yaml", lambda d: d["policies"][0].update(group_by="alertname"), "group_by must be a list"),
    ("compose depends on a missing service", "docker/compose.yaml", "yaml", lambda d: d["services"]["grafana"]["depends_on"].update(cache={"condition": "service_started"}), "unknown service cache"),
]


class Static(unittest.TestCase):
    def test_repository_passes(self):
        t = Tree()
        try:
            rc, out = t.run()
            self.assertEqual(rc, 0, out)
        finally:
            t.close()

    def test_each_breakage_is_caught(self):
        for name, rel, kind, breakage, expected in BREAKAGES:
            with self.subTest(name):
                t = Tree()
                try:
                    (t.edit_json if kind == "json" else t.edit_yaml)(rel, breakage)
                    rc, out = t.run()
                    self.assertEqual(rc, 1, "%s not caught:\n%s" % (name, out))
                    fails = [l for l in out.splitlines() if l.startswith("FAIL")]
                    self.assertTrue(any(expected in l for l in fails), "%s: no failure says %r:\n%s" % (name, expected, "\n".join(fails)))
                finally:
                    t.close()

    def test_invalid_files(self):
        for name, rel, text in [("yaml", DS, "datasources: [unclosed"), ("json", FLEET, "{not json")]:
            with self.subTest(name):
                t = Tree()
                try:
                    with open(t.path(*rel.split("/")), "w") as f:
                        f.write(text)
                    rc, out = t.run()
                    self.assertEqual(rc, 1)
                    self.assertIn("not valid", out)
                finally:
                    t.close()


class Macros(unittest.TestCase):
    """Expansions compared with the strings Grafana's macros_test.go expects."""
    start = datetime(2018, 4, 12, 18, 0, 0, tzinfo=timezone.utc)
    end = datetime(2018, 4, 12, 18, 5, 0, tzinfo=timezone.utc)

    def x(self, sql, ts=False, interval=60):
        return macros.interpolate(sql, self.start, self.end, interval, ts)

    def test_time_filter_and_bounds(self):
        self.assertEqual(self.x("WHERE $__timeFilter(time_column)"),
                         "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'")
        self.assertEqual(self.x("$__timeFrom() $__timeTo()"), "'2018-04-12T18:00:00Z' '2018-04-12T18:05:00Z'")
        self.assertEqual(self.x("$__unixEpochFilter(t)"), "t >= 1523556000 AND t <= 1523556300")
        self.assertEqual(self.x("$__unixEpochNanoFrom()"), "1523556000000000000")

    def test_time_group(self):
        self.assertEqual(self.x("GROUP BY $__timeGroup(time_column,'5m')"), "GROUP BY floor(extract(epoch from time_column)/300)*300")
        self.assertEqual(self.x("GROUP BY $__timeGroup(time_column,'5m')", ts=True), "GROUP BY time_bucket('300.000s',time_column)")
        self.assertEqual(self.x("$__timeGroupAlias(time_column,'5m')"), 'floor(extract(epoch from time_column)/300)*300 AS "time"')
        self.assertEqual(self.x("SELECT $__timeGroup(time_column,'5m'), value"), 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value')
        self.assertEqual(self.x("$__timeGroup(c, 30d)"), "floor(extract(epoch from c)/2.592e+06)*2.592e+06")
        self.assertEqual(self.x("$__unixEpochGroup(c,'5m')"), "floor((c)/300)*300")

    def test_interval(self):
        self.assertEqual(self.x("$__interval_ms $__interval", interval=300), "300000 5m")
        self.assertEqual(self.x("$__timeGroupAlias(ts, $__interval)", ts=True, interval=3600), "time_bucket('3600.000s',ts) AS \"time\"")

    def test_errors(self):
        for bad in ("$__timeGroup(c)", "$__timeFilter()", "$__nonsense(c)", "$__timeGroup(c, 5 minutes)", "$__timeGroup(c, 5m, maybe)"):
            with self.subTest(bad), self.assertRaises(macros.MacroError):
                self.x(bad)

    def test_variables(self):
        defs = {"m": {"name": "m", "multi": True}, "s": {"name": "s"}}
        vals = {"m": ["a", "o'b"], "s": "it's"}
        self.assertEqual(macros.replace_variables("x IN ($m) AND y = '${s}' AND z = [[s]]", defs, vals),
                         "x IN ('a','o''b') AND y = 'it''s' AND z = it''s")
        self.assertEqual(macros.replace_variables("${m:csv} ${s:sqlstring}", defs, vals), "a,o'b 'it''s'")
        with self.assertRaises(macros.MacroError):
            macros.replace_variables("$nope", defs, vals)
        self.assertEqual(macros.replace_variables("$__timeFilter(t) $__interval", defs, vals), "$__timeFilter(t) $__interval")


class Shapes(unittest.TestCase):
    """What the frame conversion would reject, without a database."""

    def test_time_series(self):
        self.assertEqual(check.shape_problems("panel", "time_series", [("time", "timestamptz"), ("v", "float8")], [(1, 1.0), (2, 2.0)]), [])
        self.assertIn("time column is missing", check.shape_problems("panel", "time_series", [("t", "timestamptz"), ("v", "float8")], [])[0])
        self.assertTrue(check.shape_problems("panel", "time_series", [("time", "timestamptz"), ("v", "jsonb")], []))
        self.assertTrue(check.shape_problems("panel", "time_series", [("time", "int8"), ("metric", "text"), ("v", "int8")], [(2, "a", 1), (1, "a", 1)]))

    def test_alert(self):
        ok = [("monitor", "text"), ("score", "float8")]
        self.assertEqual(check.shape_problems("alert", "table", ok, [("a", 1.0), ("b", 2.0)]), [])
        self.assertTrue(check.shape_problems("alert", "table", ok, [("a", 1.0), ("a", 2.0)]))
        self.assertTrue(check.shape_problems("alert", "table", ok, [(None, 1.0)]))
        self.assertTrue(check.shape_problems("alert", "table", ok + [("n", "int8")], []))
        self.assertTrue(check.shape_problems("alert", "table", ok + [("t", "timestamptz")], []))
        self.assertTrue(check.shape_problems("alert", "time_series", ok, []))

    def test_variable_and_annotation(self):
        self.assertTrue(check.shape_problems("variable", "table", [("a", "text"), ("b", "text")], []))
        self.assertEqual(check.shape_problems("variable", "table", [("__text", "text"), ("__value", "text")], []), [])
        self.assertTrue(check.shape_problems("annotation", "table", [("when", "timestamptz"), ("text", "text")], []))


NPM_DIR = os.environ.get("TIDEWATCH_NPM_DIR")


@unittest.skipUnless(NPM_DIR and shutil.which("npm"), "TIDEWATCH_NPM_DIR is not set or npm is absent; tools/test.sh sets it")
class TypeCheck(unittest.TestCase):
    """tsc --strict against @grafana/schema catches what the schema forbids."""

    def test_breakages(self):
        t = Tree()
        try:
            t.edit_json("grafana/dashboards/anomalies.json", lambda d: d.update(titel="misspelt"))  # not a property
            t.edit_json(FLEET, lambda d: d["panels"][0]["fieldConfig"]["defaults"].update(color={"mode": "rainbow"}))
            t.edit_json("grafana/dashboards/series.json", lambda d: d.update(graphTooltip="shared"))  # a number
            rc, out = t.run("--tsc", NPM_DIR)
            self.assertEqual(rc, 1, out)
            fails = sorted(l for l in out.splitlines() if l.startswith("FAIL") and "@grafana/schema" in l)
            self.assertEqual(len(fails), 3, "\n".join(fails))
            self.assertIn("titel", fails[0])
            self.assertIn("rainbow", fails[1])
            self.assertIn("DashboardCursorSync", fails[2])
        finally:
            t.close()


@unittest.skipUnless(DSN, "TIDEWATCH_GRAFANA_DSN is not set (the demo database as tidewatch_reader); tools/test.sh sets it")
class Queries(unittest.TestCase):
    """Broken queries against the demo database: each must fail with the file, panel or rule and query."""

    def run_with(self, rel, kind, breakage, expected, expect=None, only=None):
        t = Tree()
        try:
            (t.edit_json if kind == "json" else t.edit_yaml)(rel, breakage)
            args = ["--dsn", DSN, "--only", only]
            if expect:
                with open(t.path("expect.yaml"), "w") as f:
                    yaml.safe_dump(expect, f)
                args += ["--expect", t.path("expect.yaml")]
            rc, out = t.run(*args)
            self.assertEqual(rc, 1, out[-3000:])
            fails = [b for b in out.split("FAIL ")[1:]]
            hit = [f for f in fails if expected in f]
            self.assertTrue(hit, "no failure says %r:\n%s" % (expected, "\n".join(fails)[-3000:]))
            self.assertIn("query:", hit[0])
        finally:
            t.close()

    def test_timescaledb_refuted_without_search_path(self):
        """A connection whose search_path lacks tidewatch: Grafana's time_bucket would not resolve."""
        runner = check.Runner(DSN + " options='-c search_path=public'", check.Report(), True, {})
        with redirect_stdout(io.StringIO()) as out:
            try:
                check.prove_timescaledb(runner, "ds.yaml", runner.r)
            except Exception as e:  # time_bucket does not even resolve
                runner.r.fail("ds.yaml", "timescaledb", "error: %s" % e)
        runner.conn.close()
        self.assertTrue(runner.r.failures, out.getvalue())
        self.assertIn("resolves to schema None", out.getvalue())

    def test_timescaledb_proven_for_the_reader(self):
        runner = check.Runner(DSN, check.Report(), True, {})
        with redirect_stdout(io.StringIO()) as out:
            check.prove_timescaledb(runner, "ds.yaml", runner.r)
        runner.conn.close()
        self.assertFalse(runner.r.failures, out.getvalue())
        self.assertEqual(runner.r.passed, 3)

    def test_fixtures(self):
        with open(os.path.join(FIXTURES, "queries.yaml")) as f:
            cases = yaml.safe_load(f)
        for case in cases:
            with self.subTest(case["name"]):
                if case["file"].endswith(".json"):
                    def brk(d, c=case):
                        panel = next(p for p in d["panels"] if p["id"] == c["panel"])
                        panel["targets"][0]["rawSql"] = c["sql"]
                        panel["targets"][0]["format"] = c.get("format", panel["targets"][0]["format"])
                    self.run_with(case["file"], "json", brk, case["expect"], case.get("expectations"), os.path.basename(case["file"]))
                else:
                    def brk(d, c=case):
                        rule = next(r for g in d["groups"] for r in g["rules"] if r["uid"] == c["rule"])
                        rule["data"][0]["model"]["rawSql"] = c["sql"]
                    self.run_with(case["file"], "yaml", brk, case["expect"], case.get("expectations"), case["rule"])


if __name__ == "__main__":
    unittest.main()
