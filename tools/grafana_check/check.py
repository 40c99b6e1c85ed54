#!/usr/bin/env python3
"""Check Tidewatch's Grafana provisioning without Grafana.

    python3 tools/grafana_check/check.py [--root DIR] [--dsn CONNINFO] [--tsc] [--expect FILE]

1. parses every provisioning YAML and dashboard JSON and enforces what Grafana's loader enforces;
2. checks what Grafana finds only when it evaluates (condition and expression refIds, datasource uids,
   dashboard/panel annotations of rules, receivers of policies);
3. with --dsn (a libpq conninfo of the demo database as tidewatch_reader): expands every panel,
   annotation, variable and alert query as Grafana does (macros.py) and runs it, asserting no error,
   the shape its format needs, and rows where the demo guarantees them (--expect);
   it also proves (or refutes) the datasource's timescaledb: true;
4. with --tsc: type-checks every dashboard against @grafana/schema with tsc --noEmit --strict;
5. checks docker/compose.yaml against the provisioning (mounted paths, environment) and README.md.

Every failure names the file, the panel or rule, and the query. Ends with
"grafana_check: N passed, M failed"; exits 1 on any failure.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import macros  # noqa: E402

try:
    import yaml
except ImportError:  # tools/test.sh installs PyYAML first
    yaml = None

UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
ENV = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")
DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
NO_DATA = {"Alerting", "NoData", "OK", "KeepLast"}
EXEC_ERR = {"Alerting", "Error", "OK", "KeepLast"}
EXPR_TYPES = {"math", "reduce", "resample", "classic_conditions", "threshold", "sql"}
REDUCERS = {"sum", "mean", "min", "max", "count", "last", "median"}
EVALUATORS = {"gt", "lt", "gte", "lte", "eq", "ne", "within_range", "outside_range", "within_range_included",
              "outside_range_included"}
SSLMODES = {"disable", "require", "verify-ca", "verify-full"}
RECEIVER_TYPES = {"webhook", "email", "slack", "pagerduty", "opsgenie", "teams", "discord", "telegram",
                  "googlechat", "victorops", "pushover", "sensugo", "threema", "webex", "line", "kafka", "sns",
                  "oncall", "mqtt", "wecom", "dingding", "alertmanager", "jira"}
NUMERIC = {"int2", "int4", "int8", "float4", "float8", "numeric"}
STRING_TYPES = {"text", "varchar", "bpchar", "name", "char"}
TIME_TYPES = {"timestamptz", "timestamp", "date"}
PG_DS = "grafana-postgresql-datasource"


class Report:
    def __init__(self):
        self.passed = 0
        self.failures = []

    def ok(self):
        self.passed += 1

    def fail(self, file, where, message, query=None):
        self.failures.append((file, where, message, query))
        text = "FAIL %s: %s: %s" % (file, where, message)
        if query:
            text += "\n    query: " + query.strip().replace("\n", "\n           ")
        print(text, flush=True)

    def check(self, cond, file, where, message, query=None):
        if cond:
            self.ok()
        else:
            self.fail(file, where, message, query)
        return cond


def duration_s(text):
    """Grafana/Prometheus duration (1m, 10s, 1h30m, 2d) in seconds, or None."""
    if isinstance(text, (int, float)):
        return float(text)
    if not isinstance(text, str) or not DURATION.match(text):
        return None
    total = 0.0
    for num, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text):
        total += int(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[unit]
    return total


def env_refs(value, path=()):
    """(path, name) of every $NAME / ${NAME} in the strings of value ($$ is a literal $)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from env_refs(v, path + (str(k),))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from env_refs(v, path + (str(i),))
    elif isinstance(value, str):
        for m in ENV.finditer(value):
            if m.group(0) != "$$":
                yield ".".join(path), m.group(1) or m.group(2)


def load_yaml(path, report):
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except Exception as e:  # a file Grafana cannot parse is skipped by it, with an error in its log
        report.fail(path, "file", "not valid YAML: %s" % e)
        return None
    if not isinstance(doc, dict):
        report.fail(path, "file", "not a YAML mapping")
        return None
    return doc


def yaml_files(d):
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith((".yaml", ".yml")))


class Provisioning:
    """Everything under a grafana/ folder, loaded and statically checked."""

    def __init__(self, root, report, env=None):
        self.root = root
        self.r = report
        self.env = env  # names Grafana's environment defines (from compose), or None: not checked
        self.datasources = {}  # uid -> (file, definition)
        self.dashboards = {}  # uid -> (file, json)
        self.rules = []  # (file, group, rule)
        self.receivers = set()
        self.provider_paths = []
        self.env_used = set()
        self.timescaledb = False

    # -- env -------------------------------------------------------------------------------------
    def check_env(self, file, where, value):
        for path, name in env_refs(value):
            self.env_used.add(name)
            if self.env is not None:
                self.r.check(name in self.env, file, "%s.%s" % (where, path),
                             "$%s is not set in Grafana's environment (docker/compose.yaml); write $$ for a literal $" % name)

    # -- datasources -----------------------------------------------------------------------------
    def load_datasources(self):
        defaults = {}
        names = set()
        for f in yaml_files(os.path.join(self.root, "provisioning", "datasources")):
            doc = load_yaml(f, self.r)
            if doc is None:
                continue
            self.r.check(doc.get("apiVersion") == 1, f, "apiVersion", "must be 1")
            for i, ds in enumerate(doc.get("datasources") or []):
                where = "datasources[%d] %s" % (i, ds.get("name"))
                if not self.r.check(bool(ds.get("name")) and bool(ds.get("type")), f, where, "needs name and type"):
                    continue
                uid = ds.get("uid")
                self.r.check(uid is not None, f, where, "needs a fixed uid (else Grafana derives one and dashboards naming it break)")
                if uid is not None:
                    self.r.check(bool(UID.match(str(uid))), f, where, "uid %r: at most 40 of [A-Za-z0-9_-]" % uid)
                    self.r.check(uid not in self.datasources, f, where, "uid %r used twice" % uid)
                    self.datasources[uid] = (f, ds)
                self.r.check(ds["name"] not in names, f, where, "name used twice")
                names.add(ds["name"])
                if ds.get("isDefault"):
                    org = ds.get("orgId", 1)
                    self.r.check(org not in defaults, f, where, "a second default data source in org %s" % org)
                    defaults[org] = ds["name"]
                self.check_env(f, where, {k: v for k, v in ds.items()})
                jd = ds.get("jsonData") or {}
                if ds["type"] == PG_DS or ds["type"] == "postgres":
                    self.r.check(bool(jd.get("database")), f, where,
                                 "jsonData.database is required (since Grafana 12.2 a top-level database is ignored)")
                    self.r.check("database" not in ds, f, where, "database at the top level is ignored since Grafana 12.2: move it to jsonData")
                    self.r.check(isinstance(jd.get("postgresVersion"), int), f, where, "jsonData.postgresVersion must be an integer (1500 for 15)")
                    mode = jd.get("sslmode")
                    self.r.check(mode is None or mode in SSLMODES or str(mode).startswith("$"), f, where,
                                 "jsonData.sslmode %r not one of %s" % (mode, sorted(SSLMODES)))
                    if "timeInterval" in jd:
                        self.r.check(duration_s(jd["timeInterval"]) is not None, f, where, "jsonData.timeInterval %r does not parse" % jd["timeInterval"])
                    if "maxOpenConns" in jd:
                        self.r.check(isinstance(jd["maxOpenConns"], int) and jd["maxOpenConns"] >= 0, f, where, "jsonData.maxOpenConns must be a non-negative integer")
                    self.r.check(isinstance(jd.get("timescaledb", False), bool), f, where, "jsonData.timescaledb must be a boolean")
                    self.r.check(bool((ds.get("secureJsonData") or {}).get("password")), f, where, "secureJsonData.password is missing")
                    self.timescaledb = self.timescaledb or bool(jd.get("timescaledb"))

    # -- dashboards provider ---------------------------------------------------------------------
    def load_providers(self):
        for f in yaml_files(os.path.join(self.root, "provisioning", "dashboards")):
            doc = load_yaml(f, self.r)
            if doc is None:
                continue
            self.check_env(f, "providers", doc)
            for i, p in enumerate(doc.get("providers") or []):
                where = "providers[%d] %s" % (i, p.get("name"))
                self.r.check(bool(p.get("name")), f, where, "needs a name")
                self.r.check(p.get("type", "file") == "file", f, where, "type must be file")
                opts = p.get("options") or {}
                self.r.check(bool(opts.get("path")), f, where, "options.path is required")
                if opts.get("foldersFromFilesStructure"):
                    self.r.check(not p.get("folder") and not p.get("folderUid"), f, where,
                                 "foldersFromFilesStructure cannot be combined with folder or folderUid")
                if opts.get("path"):
                    self.provider_paths.append(opts["path"])

    # -- dashboards ------------------------------------------------------------------------------
    def load_dashboards(self):
        d = os.path.join(self.root, "dashboards")
        titles = set()
        for dirpath, _, files in sorted(os.walk(d)):
            for name in sorted(files):
                if not name.endswith(".json"):
                    continue
                f = os.path.join(dirpath, name)
                try:
                    with open(f) as fh:
                        dash = json.load(fh)
                except ValueError as e:
                    self.r.fail(f, "file", "not valid JSON: %s" % e)
                    continue
                self.check_dashboard(f, dash, titles)

    def check_dashboard(self, f, dash, titles):
        r = self.r
        uid = dash.get("uid")
        if not r.check(isinstance(uid, str) and bool(UID.match(uid)), f, "uid", "uid %r: at most 40 of [A-Za-z0-9_-] (a stable uid keeps links and alert annotations working)" % uid):
            return
        r.check(uid not in self.dashboards, f, "uid", "uid %r used by %s too" % (uid, self.dashboards.get(uid, ("",))[0]))
        self.dashboards[uid] = (f, dash)
        r.check(bool(dash.get("title")) and dash.get("title") not in titles, f, "title", "a title, unique within its folder")
        titles.add(dash.get("title"))
        r.check(dash.get("schemaVersion") in (41, 42), f, "schemaVersion", "must be 41 or 42, is %r" % dash.get("schemaVersion"))
        r.check("__inputs" not in dash and "${DS_" not in json.dumps(dash), f, "datasource",
                "exported-for-sharing placeholders (__inputs, ${DS_...}) break file provisioning: name the datasource uid")
        ids = set()
        for p in self.panels(dash):
            where = "panel %s %r" % (p.get("id"), p.get("title"))
            r.check(isinstance(p.get("id"), int) and p.get("id") not in ids, f, where, "panel ids must be unique integers")
            ids.add(p.get("id"))
            r.check(bool(p.get("type")), f, where, "panel needs a type")
            gp = p.get("gridPos") or {}
            good = all(isinstance(gp.get(k), int) for k in ("h", "w", "x", "y"))
            r.check(good and 0 < gp["w"] <= 24 and gp["h"] > 0 and gp["x"] >= 0 and gp["x"] + gp["w"] <= 24 and gp["y"] >= 0,
                    f, where, "gridPos needs integer h, w, x, y with 0 < w <= 24 and x + w <= 24: %r" % gp)
            if p.get("type") == "row":
                continue
            refs = set()
            for t in p.get("targets") or []:
                ds = t.get("datasource") or p.get("datasource") or {}
                self.check_ds_ref(f, where, ds)
                r.check(t.get("refId") and t.get("refId") not in refs, f, where, "targets need unique refIds")
                refs.add(t.get("refId"))
                r.check(t.get("format", "time_series") in ("time_series", "table"), f, where, "format %r" % t.get("format"))
                r.check(bool(t.get("rawSql")), f, where, "a target without rawSql")
        names = set()
        for v in (dash.get("templating") or {}).get("list") or []:
            where = "variable %s" % v.get("name")
            r.check(bool(v.get("name")) and v.get("name") not in names, f, where, "variable names must be unique")
            names.add(v.get("name"))
            r.check(v.get("type") in ("query", "custom", "textbox", "constant", "interval", "datasource", "adhoc"), f, where, "type %r" % v.get("type"))
            if v.get("type") == "query":
                self.check_ds_ref(f, where, v.get("datasource") or {})
                q = v.get("query")
                r.check(isinstance(q, str) and bool(q) or isinstance(q, dict) and bool(q.get("rawSql") or q.get("query")), f, where, "a query variable needs its query")
        for a in (dash.get("annotations") or {}).get("list") or []:
            if a.get("builtIn"):
                continue
            where = "annotation %r" % a.get("name")
            self.check_ds_ref(f, where, a.get("datasource") or {})
            r.check(bool((a.get("target") or {}).get("rawSql")), f, where, "annotation query needs target.rawSql")

    @staticmethod
    def panels(dash):
        for p in dash.get("panels") or []:
            yield p
            for q in p.get("panels") or []:  # collapsed rows
                yield q

    def check_ds_ref(self, f, where, ds):
        uid = ds.get("uid") if isinstance(ds, dict) else ds
        if uid in (None, "-- Grafana --", "-- Mixed --", "-- Dashboard --"):
            self.r.check(uid is not None, f, where, "datasource must name a uid")
            return
        self.r.check(uid in self.datasources, f, where, "datasource uid %r is not provisioned" % uid)

    # -- alerting --------------------------------------------------------------------------------
    def load_alerting(self):
        files = [(f, load_yaml(f, self.r)) for f in yaml_files(os.path.join(self.root, "provisioning", "alerting"))]
        files = [(f, d) for f, d in files if d is not None]
        for f, doc in files:
            for cp in doc.get("contactPoints") or []:
                self.check_env(f, "contactPoints %s" % cp.get("name"), cp)
                self.r.check(bool(cp.get("name")), f, "contactPoints", "a contact point needs a name")
                self.receivers.add(cp.get("name"))
                for rc in cp.get("receivers") or []:
                    where = "contact point %s receiver %s" % (cp.get("name"), rc.get("uid"))
                    self.r.check(bool(UID.match(str(rc.get("uid", "")))), f, where, "receiver uid: at most 40 of [A-Za-z0-9_-]")
                    self.r.check(rc.get("type") in RECEIVER_TYPES, f, where, "unknown receiver type %r" % rc.get("type"))
                    if rc.get("type") == "webhook":
                        self.r.check(bool((rc.get("settings") or {}).get("url")), f, where, "webhook needs settings.url")
        rule_uids, titles = {}, set()
        for f, doc in files:
            for g in doc.get("groups") or []:
                gw = "group %s" % g.get("name")
                self.r.check(bool(g.get("name")) and bool(g.get("folder")), f, gw, "a group needs name and folder")
                iv = duration_s(g.get("interval"))
                self.r.check(iv is not None and iv > 0 and iv % 10 == 0, f, gw, "interval %r must be a positive multiple of 10s" % g.get("interval"))
                for rule in g.get("rules") or []:
                    self.check_rule(f, g, rule, rule_uids, titles)
        for f, doc in files:
            for p in doc.get("policies") or []:
                self.check_route(f, "policy", p, top=True)

    def check_route(self, f, where, route, top=False):
        rcv = route.get("receiver")
        if top or rcv:
            self.r.check(rcv in self.receivers, f, where, "receiver %r is not a provisioned contact point" % rcv)
        for k in ("group_wait", "group_interval", "repeat_interval"):
            if k in route:
                self.r.check(duration_s(route[k]) is not None, f, where, "%s %r does not parse" % (k, route[k]))
        self.r.check(isinstance(route.get("group_by", []), list), f, where, "group_by must be a list")
        for m in route.get("object_matchers") or []:
            self.r.check(isinstance(m, list) and len(m) == 3 and m[1] in ("=", "!=", "=~", "!~"), f, where, "matcher %r: [label, op, value]" % (m,))
        for i, sub in enumerate(route.get("routes") or []):
            self.check_route(f, "%s.routes[%d]" % (where, i), sub)

    def check_rule(self, f, group, rule, rule_uids, titles):
        r = self.r
        uid = rule.get("uid")
        where = "rule %s" % uid
        r.check(isinstance(uid, str) and bool(UID.match(uid)), f, where, "uid: at most 40 of [A-Za-z0-9_-]")
        r.check(uid not in rule_uids, f, where, "uid used twice")
        rule_uids[uid] = f
        key = (group.get("folder"), rule.get("title"))
        r.check(bool(rule.get("title")) and key not in titles, f, where, "a title, unique within the folder")
        titles.add(key)
        r.check(rule.get("noDataState") in NO_DATA, f, where, "noDataState %r not one of %s" % (rule.get("noDataState"), sorted(NO_DATA)))
        r.check(rule.get("execErrState") in EXEC_ERR, f, where, "execErrState %r not one of %s" % (rule.get("execErrState"), sorted(EXEC_ERR)))
        r.check(duration_s(rule.get("for", "0s")) is not None, f, where, "for %r does not parse" % rule.get("for"))
        ann = rule.get("annotations") or {}
        r.check(("__dashboardUid__" in ann) == ("__panelId__" in ann), f, where, "__dashboardUid__ and __panelId__ go together")
        if "__dashboardUid__" in ann:
            dash = self.dashboards.get(ann["__dashboardUid__"])
            if r.check(dash is not None, f, where, "__dashboardUid__ %r is not a provisioned dashboard" % ann["__dashboardUid__"]):
                ids = {str(p.get("id")) for p in self.panels(dash[1])}
                r.check(str(ann.get("__panelId__")) in ids, f, where, "__panelId__ %r is not a panel of %s" % (ann.get("__panelId__"), ann["__dashboardUid__"]))
        for k, v in (rule.get("labels") or {}).items():
            r.check(isinstance(v, str), f, where, "label %s must be a string" % k)
            self.check_env(f, where + " labels", {k: v})
        data = rule.get("data") or []
        refs = [d.get("refId") for d in data]
        r.check(len(data) > 0 and len(set(refs)) == len(refs) and all(refs), f, where, "data needs queries with unique refIds")
        r.check(rule.get("condition") in refs, f, where, "condition %r is not a refId of the rule (%s)" % (rule.get("condition"), ", ".join(map(str, refs))))
        for d in data:
            dw = "%s refId %s" % (where, d.get("refId"))
            model = d.get("model") or {}
            if d.get("datasourceUid") == "__expr__":
                t = model.get("type")
                if not r.check(t in EXPR_TYPES, f, dw, "expression type %r" % t):
                    continue
                if t in ("reduce", "threshold", "resample"):
                    r.check(model.get("expression") in refs and model.get("expression") != d.get("refId"), f, dw,
                            "expression %r is not another refId of the rule" % model.get("expression"))
                if t == "math":
                    for ref in re.findall(r"\$\{?(\w+)\}?", model.get("expression", "")):
                        r.check(ref in refs and ref != d.get("refId"), f, dw, "math references $%s, not a refId" % ref)
                if t == "reduce":
                    r.check(model.get("reducer") in REDUCERS, f, dw, "reducer %r not one of %s" % (model.get("reducer"), sorted(REDUCERS)))
                if t == "threshold":
                    for c in model.get("conditions") or [{}]:
                        ev = c.get("evaluator") or {}
                        r.check(ev.get("type") in EVALUATORS and isinstance(ev.get("params"), list) and ev["params"], f, dw,
                                "evaluator %r: type one of %s with params" % (ev, sorted(EVALUATORS)))
                continue
            r.check(d.get("datasourceUid") in self.datasources, f, dw, "datasourceUid %r is neither provisioned nor __expr__" % d.get("datasourceUid"))
            rtr = d.get("relativeTimeRange") or {}
            r.check(isinstance(rtr.get("from"), int) and isinstance(rtr.get("to"), int) and rtr["from"] > rtr["to"] >= 0, f, dw,
                    "relativeTimeRange needs integer seconds with from > to >= 0: %r" % rtr)
            sql = model.get("rawSql") or ""
            r.check(bool(sql), f, dw, "a query without rawSql")
            leftover = [m.group(0) for m in macros.VARIABLE.finditer(sql) if not (m.group(1) or m.group(3) or m.group(4) or "").startswith("__")]
            r.check(not leftover, f, dw, "alert queries have no dashboard variables: %s" % ", ".join(leftover), sql)
            r.check(model.get("format", "time_series") in ("table", "time_series"), f, dw, "format %r" % model.get("format"))
            self.rules.append((f, group, rule, d))
        ns = rule.get("notification_settings") or {}
        if ns:
            r.check(ns.get("receiver") in self.receivers, f, where, "notification_settings.receiver is not a contact point")

    def load_all(self):
        self.load_datasources()
        self.load_providers()
        self.load_dashboards()
        self.load_alerting()


# -- execution -----------------------------------------------------------------------------------
class Runner:
    """Runs queries as Grafana would: simple query protocol (several statements allowed), the
    frame built from the first result with columns; shape checks per format."""

    def __init__(self, dsn, report, timescaledb, expect):
        import psycopg
        self.psycopg = psycopg
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.r = report
        self.timescaledb = timescaledb
        self.expect = expect or {}
        with self.conn.cursor() as cur:
            cur.execute("SELECT now()")
            self.now = cur.fetchone()[0].astimezone(timezone.utc)
        self.types = {}

    def type_name(self, oid):
        if oid not in self.types:
            with self.conn.cursor() as cur:
                cur.execute("SELECT typname FROM pg_type WHERE oid = %s", (oid,))
                row = cur.fetchone()
                self.types[oid] = row[0] if row else "unknown"
        return self.types[oid]

    def run(self, sql):
        """(columns [(name, type)], rows) of the first result with columns, or raises."""
        cur = self.psycopg.ClientCursor(self.conn)
        try:
            cur.execute(sql)
            while True:
                if cur.description:
                    cols = [(d.name, self.type_name(d.type_code)) for d in cur.description]
                    return cols, cur.fetchall()
                if not cur.nextset():
                    return [], []
        finally:
            cur.close()

    def execute(self, file, where, sql, fmt, start, end, interval_s, need_rows=False, kind="panel"):
        try:
            text = macros.interpolate(sql, start, end, interval_s, self.timescaledb)
        except macros.MacroError as e:
            self.r.fail(file, where, "interpolation failed: %s" % e, sql)
            return None
        try:
            cols, rows = self.run(text)
        except self.psycopg.Error as e:
            self.r.fail(file, where, "db query error: %s" % str(e).strip(), text)
            return None
        problems = shape_problems(kind, fmt, cols, rows)
        if need_rows and not rows:
            problems.append("no rows, but the demo data guarantees some")
        self.r.check(not problems, file, where, "; ".join(problems), text)
        return cols, rows


def shape_problems(kind, fmt, cols, rows):
    """What Grafana's data frame conversion (sqleng) or alerting's numeric table would reject."""
    p = []
    names = [c[0] for c in cols]
    types = dict(cols)
    if kind == "alert":
        numeric = [n for n, t in cols if t in NUMERIC]
        other = [n for n, t in cols if t not in NUMERIC and t not in STRING_TYPES]
        if fmt != "table":
            p.append("alert queries here use format table (one number per row)")
        if len(numeric) != 1 or other:
            p.append("an alert query returns exactly one numeric column and string label columns, got %s" % cols)
        labels = [i for i, (n, t) in enumerate(cols) if t in STRING_TYPES]
        seen = set()
        for row in rows:
            key = tuple(row[i] for i in labels)
            if any(v is None for v in key):
                p.append("a NULL label value %s (Grafana expects strings)" % (key,))
                break
            if key in seen:
                p.append("two rows with the same labels %s: one alert instance per row" % (key,))
                break
            seen.add(key)
        return p
    if kind == "variable":
        if not ("__text" in names and "__value" in names) and len(cols) != 1:
            p.append("a variable query returns one column (or __text and __value), got %s" % names)
        return p
    if kind == "annotation":
        if "time" not in names or types.get("time") not in TIME_TYPES | NUMERIC:
            p.append("an annotation query needs a time column, got %s" % cols)
        if "text" not in names and "title" not in names:
            p.append("an annotation query needs a text column")
        if "timeend" in names and types["timeend"] not in TIME_TYPES | NUMERIC:
            p.append("timeend must be a time")
        return p
    if fmt == "time_series":
        if "time" not in names:
            return ["time column is missing (format time_series needs a column named time)"]
        if types["time"] not in TIME_TYPES | NUMERIC:
            p.append("time column has type %s" % types["time"])
        values = [n for n, t in cols if n != "time" and n != "metric" and t not in STRING_TYPES]
        bad = [n for n in values if types[n] not in NUMERIC]
        if bad:
            p.append("value columns must be numeric, %s are not" % ", ".join("%s %s" % (n, types[n]) for n in bad))
        if not values:
            p.append("no numeric value column")
        if "metric" in names and types["metric"] not in STRING_TYPES:
            p.append("metric column must be text")
        ti = names.index("time")
        times = [r[ti] for r in rows]
        if any(t is None for t in times):
            p.append("NULL in the time column")
        elif times != sorted(times):
            p.append("rows are not sorted by time (Grafana cannot turn an unsorted long frame into series): ORDER BY time")
    return p


def resolve_variables(runner, file, dash, start, end, interval_s):
    """Values of a dashboard's variables, in order, each query run with the ones before it."""
    defs, values = {}, {}
    for v in (dash.get("templating") or {}).get("list") or []:
        name = v.get("name")
        defs[name] = v
        t = v.get("type")
        options = []
        if t == "query":
            q = v.get("query")
            sql = q if isinstance(q, str) else (q or {}).get("rawSql") or (q or {}).get("query") or ""
            try:
                sql_v = macros.replace_variables(sql, defs, values)
            except macros.MacroError as e:
                runner.r.fail(file, "variable %s" % name, str(e), sql)
                continue
            res = runner.execute(file, "variable %s" % name, sql_v, "table", start, end, interval_s,
                                 need_rows=True, kind="variable")
            if res:
                cols, rows = res
                names = [c[0] for c in cols]
                vi = names.index("__value") if "__value" in names else 0
                options = [str(r[vi]) for r in rows if r[vi] is not None]
        elif t == "custom":
            options = [o.strip() for o in re.split(r"(?<!\\),", v.get("query") or "") if o.strip()]
        elif t in ("textbox", "constant"):
            options = [v.get("query") or ""]
        if not options:
            continue
        cur = (v.get("current") or {}).get("value")
        if v.get("multi") or v.get("includeAll"):
            cur = cur if isinstance(cur, list) else [cur] if cur else []
            if not cur or "$__all" in cur or not set(cur) <= set(options):
                cur = options  # All: every option, as Grafana sends it without a custom all value
            values[name] = cur
        else:
            values[name] = cur if cur in options else options[0]
    return defs, values


def run_dashboards(runner, prov, min_interval, only=None):
    expect = runner.expect.get("dashboards") or {}
    for uid, (file, dash) in sorted(prov.dashboards.items()):
        if only and os.path.basename(file) not in only:
            continue
        t = dash.get("time") or {"from": "now-6h", "to": "now"}
        start = macros.relative_time(t["from"], runner.now)
        end = macros.relative_time(t["to"], runner.now)
        need = set(map(str, (expect.get(uid) or {}).get("panels_with_rows") or []))
        need_ann = set((expect.get(uid) or {}).get("annotations_with_rows") or [])
        defs, values = resolve_variables(runner, file, dash, start, end, 1.0)
        for p in prov.panels(dash):
            if p.get("type") == "row":
                continue
            width = (p.get("gridPos") or {}).get("w", 24)
            interval_s = macros.query_interval(start, end, p.get("maxDataPoints") or width * 80, min_interval)
            for tg in p.get("targets") or []:
                where = "panel %s %r refId %s" % (p.get("id"), p.get("title"), tg.get("refId"))
                try:
                    sql = macros.replace_variables(tg.get("rawSql") or "", defs, values)
                except macros.MacroError as e:
                    runner.r.fail(file, where, str(e), tg.get("rawSql"))
                    continue
                runner.execute(file, where, sql, tg.get("format", "time_series"), start, end, interval_s,
                               need_rows=str(p.get("id")) in need)
        for a in (dash.get("annotations") or {}).get("list") or []:
            if a.get("builtIn"):
                continue
            where = "annotation %r" % a.get("name")
            try:
                sql = macros.replace_variables((a.get("target") or {}).get("rawSql") or "", defs, values)
            except macros.MacroError as e:
                runner.r.fail(file, where, str(e), (a.get("target") or {}).get("rawSql"))
                continue
            runner.execute(file, where, sql, "table", start, end, min_interval, need_rows=a.get("name") in need_ann,
                           kind="annotation")


def run_rules(runner, prov, only=None):
    expect = runner.expect.get("alerts") or {}
    for file, group, rule, d in prov.rules:
        if only and rule.get("uid") not in only and os.path.basename(file) not in only:
            continue
        rtr = d.get("relativeTimeRange") or {}
        if not isinstance(rtr.get("from"), int) or not isinstance(rtr.get("to"), int):
            continue
        model = d.get("model") or {}
        fmt = model.get("format", "time_series")
        where = "rule %s refId %s" % (rule.get("uid"), d.get("refId"))
        instants = [("now", runner.now, False)]
        at_sql = (expect.get(rule.get("uid")) or {}).get("fires_at")
        if at_sql:
            try:
                _, rows = runner.run(at_sql)
                at = rows[0][0] if rows and rows[0][0] is not None else None
            except runner.psycopg.Error as e:
                runner.r.fail(file, where, "the expectation's fires_at query failed: %s" % e, at_sql)
                at = None
            if runner.r.check(at is not None, file, where, "the demo has no instant at which this rule fires", at_sql):
                instants.append(("at %s" % at.isoformat(), at.astimezone(timezone.utc), True))
        for label, now, need in instants:
            start, end = now - timedelta(seconds=rtr["from"]), now - timedelta(seconds=rtr["to"])
            runner.execute(file, "%s (evaluated %s)" % (where, label), model.get("rawSql") or "", fmt, start, end,
                           max(rtr["from"] - rtr["to"], 1) / 100, need_rows=need, kind="alert")


def prove_timescaledb(runner, file, report):
    """Grafana's $__timeGroup with timescaledb: true is time_bucket('N.000s', col) with whatever
    time_bucket the connection's search_path finds. Prove, as this connection's role, that it is
    tidewatch.time_bucket, that search_path is set on the role itself (not per database), and that
    the values equal TimescaleDB's time_bucket semantics computed independently here (buckets
    aligned to the origin 2000-01-03 00:00 UTC, a Monday)."""
    _, rows = runner.run("SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                         "WHERE p.oid = to_regprocedure('time_bucket(interval, timestamptz)')")
    report.check(bool(rows) and rows[0][0] == "tidewatch", file, "timescaledb",
                 "time_bucket(interval, timestamptz) resolves to schema %r for this role, not tidewatch" % (rows[0][0] if rows else None))
    _, rows = runner.run("SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
                         "WHERE r.rolname = current_user AND s.setdatabase = 0 "
                         "AND EXISTS (SELECT 1 FROM unnest(s.setconfig) c WHERE c ~ '^search_path=.*tidewatch')")
    report.check(rows[0][0] == 1, file, "timescaledb", "search_path with tidewatch is not set on the role itself (ALTER ROLE ... SET search_path)")
    origin = datetime(2000, 1, 3, tzinfo=timezone.utc)
    points = ["1999-12-31T23:59:59.5Z", "2000-01-03T00:00:00Z", "2024-02-29T12:34:56.789Z", "2026-03-29T01:30:00Z", "1969-07-20T20:17:40Z"]
    bad = []
    for width in ("1s", "1m", "5m", "15m", "1h", "6h", "1d", "1w", "0.5s"):
        seconds = macros.parse_interval(width) if width != "0.5s" else 0.5
        for p in points:
            ts = datetime.fromisoformat(p.replace("Z", "+00:00"))
            expr = macros.evaluate("__timeGroup", ["c", width if width != "0.5s" else "500ms"], ts, ts, True)
            _, rows = runner.run("SELECT %s FROM (SELECT '%s'::timestamptz AS c) s" % (expr, p))
            us = int(seconds * 1_000_000)
            delta = int((ts - origin).total_seconds() * 1_000_000)
            want = origin + timedelta(microseconds=(delta // us) * us)
            if rows[0][0] != want:
                bad.append("%s of %s: %s, TimescaleDB gives %s" % (expr, p, rows[0][0], want))
    report.check(not bad, file, "timescaledb", "time_bucket differs from TimescaleDB's: " + "; ".join(bad[:3]))


# -- type check ----------------------------------------------------------------------------------
# A dashboard file is JSON: where @grafana/schema has a string enum (FieldColorModeId, MappingType,
# ...) the file holds the enum's value, so Json<T> turns enums into their values (`${E}`) and keeps
# every other type as strict as the schema; queries of panels and annotations are the SQL data
# source's (rawSql, format), which the schema leaves to each data source.
JSON_TYPES = """import type { AnnotationQuery, DataQuery } from '@grafana/schema';

export interface SqlQuery extends DataQuery {
  rawSql: string;
  format: 'time_series' | 'table';
  editorMode?: 'code' | 'builder';
  rawQuery?: boolean;
}

export type Json<T> =
  T extends string ? `${T}` :
  T extends number | boolean | null | undefined ? T :
  T extends Array<infer U> ? Array<Json<U>> :
  T extends AnnotationQuery ? Omit<{ [K in keyof T]: Json<T[K]> }, 'target'> & { target?: SqlQuery } :
  T extends DataQuery ? { [K in keyof T]: Json<T[K]> } & Partial<SqlQuery> :
  { [K in keyof T]: Json<T[K]> };
"""

def typecheck(prov, report, cache):
    """tsc --noEmit --strict over one typed literal per dashboard: const d: Dashboard = {...}."""
    if not shutil.which("npm"):
        print("SKIP type check: npm is not installed")
        return
    os.makedirs(cache, exist_ok=True)
    pkg = os.path.join(cache, "package.json")
    if not os.path.exists(os.path.join(cache, "node_modules", "@grafana", "schema")):
        with open(pkg, "w") as f:
            json.dump({"name": "tidewatch-grafana-check", "private": True}, f)
        res = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "@grafana/schema@12.4.11", "typescript@5.9.3"],
                             cwd=cache, capture_output=True, text=True)
        if res.returncode != 0:
            report.fail(cache, "npm install", res.stderr.strip()[-2000:])
            return
    work = tempfile.mkdtemp(prefix="grafana-tsc-")
    with open(os.path.join(work, "json.ts"), "w") as f:
        f.write(JSON_TYPES)
    names = {}
    for uid, (file, dash) in sorted(prov.dashboards.items()):
        name = re.sub(r"\W", "_", uid) + ".ts"
        names[name] = file
        with open(os.path.join(work, name), "w") as f:
            f.write("import type { Dashboard } from '@grafana/schema';\nimport type { Json } from './json';\n\n"
                    "// %s\nexport const dashboard: Json<Dashboard> = %s;\n" % (file, json.dumps(dash, indent=2)))
    with open(os.path.join(work, "tsconfig.json"), "w") as f:
        json.dump({"compilerOptions": {"strict": True, "noEmit": True, "target": "ES2020", "module": "ESNext",
                                       "moduleResolution": "Bundler", "skipLibCheck": True,
                                       "typeRoots": [os.path.join(cache, "node_modules", "@types")],
                                       "baseUrl": cache, "paths": {"*": [os.path.join(cache, "node_modules", "*")]}},
                   "files": ["json.ts"] + sorted(names)}, f)
    res = subprocess.run([os.path.join(cache, "node_modules", ".bin", "tsc"), "-p", work], capture_output=True, text=True)
    errors = {}
    for line in res.stdout.splitlines():
        m = re.search(r"(\w+\.ts)\((\d+),\d+\): (error .*)", line)
        if m:
            errors.setdefault(m.group(1), []).append("line %s: %s" % (m.group(2), m.group(3)))
    for name, file in sorted(names.items()):
        report.check(name not in errors, file, "@grafana/schema", "tsc --strict: " + "; ".join(errors.get(name, [])[:5]))
    if res.returncode != 0 and not errors:
        report.fail(work, "tsc", (res.stdout + res.stderr).strip()[-2000:])
    shutil.rmtree(work, ignore_errors=True)


# -- docker compose and README -------------------------------------------------------------------
def compose_env(compose_file):
    """Names in the environment of the grafana service of a compose file, or None."""
    if not os.path.exists(compose_file):
        return None
    with open(compose_file) as f:
        doc = yaml.safe_load(f) or {}
    env = (doc.get("services") or {}).get("grafana", {}).get("environment") or {}
    if isinstance(env, list):
        return {e.split("=", 1)[0] for e in env}
    return set(env)


def check_compose(compose_file, prov, readme, report):
    base = os.path.dirname(os.path.abspath(compose_file))
    with open(compose_file) as f:
        doc = yaml.safe_load(f) or {}
    services = doc.get("services") or {}
    named = set(doc.get("volumes") or {})
    for name, svc in services.items():
        for vol in svc.get("volumes") or []:
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
            if src in named:
                continue
            report.check(os.path.exists(os.path.join(base, src)), compose_file, "services.%s.volumes" % name, "mounted path %s does not exist" % src)
        for dep, cond in (svc.get("depends_on") or {}).items() if isinstance(svc.get("depends_on"), dict) else []:
            report.check(dep in services, compose_file, "services.%s.depends_on" % name, "unknown service %s" % dep)
            if cond.get("condition") == "service_healthy":
                report.check("healthcheck" in services.get(dep, {}), compose_file, "services.%s.depends_on" % name,
                             "%s waits for %s to be healthy, which has no healthcheck" % (name, dep))
    graf = services.get("grafana") or {}
    targets = [v.split(":")[1] for v in graf.get("volumes") or [] if isinstance(v, str) and ":" in v]
    for p in prov.provider_paths:
        report.check(any(t == p or t.startswith(p.rstrip("/") + "/") for t in targets), compose_file, "grafana volumes",
                     "the dashboard provider reads %s, which compose does not mount" % p)
    env = graf.get("environment") or {}
    for name in sorted(prov.env_used):
        report.check(name in env, compose_file, "grafana environment", "provisioning uses $%s, not set for grafana" % name)
    if readme is None:
        return
    with open(readme) as f:
        text = f.read()
    section = text.split("## Run it with Docker", 1)
    if not report.check(len(section) == 2, readme, "Run it with Docker", "README has no '## Run it with Docker' section"):
        return
    section = section[1].split("\n## ", 1)[0]
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            host = str(port).rsplit(":", 1)[0].split(":")[-1]
            report.check(host in section, readme, "Run it with Docker", "port %s of %s is not in the README's section" % (host, name))
    for key in ("GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD"):
        default = re.search(r":-([^}]*)\}", str(env.get(key, "")))
        if default:
            report.check(default.group(1) in section, readme, "Run it with Docker", "the default of %s (%s) is not in the README's section" % (key, default.group(1)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", "..", "grafana"))
    ap.add_argument("--compose", help="docker/compose.yaml to check against (default: the repo's, if any)")
    ap.add_argument("--readme", help="README.md whose 'Run it with Docker' section must match compose")
    ap.add_argument("--dsn", help="libpq conninfo of the demo database as tidewatch_reader: run every query")
    ap.add_argument("--expect", help="YAML: panels and annotations that must return rows, instants at which rules fire")
    ap.add_argument("--tsc", metavar="NPM_CACHE_DIR", help="type-check dashboards with @grafana/schema installed there")
    ap.add_argument("--extra-rules", action="append", default=[], help="more alerting YAML (e.g. a doc's example)")
    ap.add_argument("--only", action="append", help="run only the queries of these dashboard files or rule uids")
    args = ap.parse_args(argv)
    report = Report()
    if yaml is None:
        print("grafana_check needs PyYAML")
        return 2
    repo = os.path.normpath(os.path.join(args.root, ".."))
    compose = args.compose or os.path.join(repo, "docker", "compose.yaml")
    env = compose_env(compose) if os.path.exists(compose) else None
    prov = Provisioning(args.root, report, env)
    prov.load_all()
    for extra in args.extra_rules:
        if extra.endswith(".md"):  # a doc page: its ```yaml blocks holding groups
            with open(extra) as f:
                blocks = re.findall(r"```yaml\n(.*?)```", f.read(), re.S)
            doc = next((d for d in (yaml.safe_load(b) for b in blocks) if isinstance(d, dict) and "groups" in d), None)
            report.check(doc is not None, extra, "example", "no ```yaml block with alert rule groups")
        else:
            doc = load_yaml(extra, report)
        if doc:
            uids, titles = {}, set()
            for g in doc.get("groups") or []:
                for rule in g.get("rules") or []:
                    prov.check_rule(extra, g, rule, uids, titles)
    if os.path.exists(compose):
        check_compose(compose, prov, args.readme, report)
    if args.dsn:
        expect = {}
        if args.expect:
            with open(args.expect) as f:
                expect = yaml.safe_load(f) or {}
        runner = Runner(args.dsn, report, prov.timescaledb, expect)
        if prov.timescaledb:
            ds_file = next((f for f, ds in prov.datasources.values() if (ds.get("jsonData") or {}).get("timescaledb")), args.root)
            prove_timescaledb(runner, ds_file, report)
        min_interval = 1.0
        for f, ds in prov.datasources.values():
            min_interval = max(min_interval, duration_s((ds.get("jsonData") or {}).get("timeInterval", "1s")) or 1.0)
        run_dashboards(runner, prov, min_interval, args.only)
        run_rules(runner, prov, args.only)
        runner.conn.close()
    if args.tsc:
        typecheck(prov, report, args.tsc)
    print("grafana_check: %d passed, %d failed" % (report.passed, len(report.failures)))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
