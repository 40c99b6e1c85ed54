"""Grafana's query interpolation for the PostgreSQL data source, done as Grafana does it.

Order, as in Grafana: the frontend replaces template variables (SqlDatasource.interpolateVariable:
a single value has ' doubled, a multi-value or include-all variable becomes 'a','b'); the backend
then replaces $__interval_ms, $__interval, $__unixEpochFrom() and $__unixEpochTo() as plain text
(sqleng.Interpolate), and finally every $name(args) through the macro engine
(pkg/tsdb/grafana-postgresql-datasource/macros.go): an unknown macro is an error.
"""
import math
from decimal import Decimal
import re
from datetime import datetime, timedelta, timezone

MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
# ${name}, ${name:format}, $name and the deprecated [[name]] / [[name:format]].
VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)|\[\[(\w+)(?::(\w+))?\]\]")
GLOBAL_VARIABLES = {"__interval", "__interval_ms", "__from", "__to", "__rate_interval", "__range", "__range_s",
                    "__range_ms", "__dashboard", "__user", "__org", "__name", "__timezone"}
FORMATS = {"raw", "sqlstring", "singlequote", "doublequote", "csv", "pipe", "text", "queryparam", "percentencode"}


class MacroError(ValueError):
    pass


def rfc3339nano(t):
    """Go's time.RFC3339Nano of a UTC time: trailing zeros of the fraction dropped, 'Z'."""
    t = t.astimezone(timezone.utc)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += ("." + "%06d" % t.microsecond).rstrip("0")
    return s + "Z"


def go_float(x):
    """fmt.Sprintf("%v", float64), as Grafana formats $__timeGroup's seconds: the shortest digits
    that round-trip, in exponent form when the decimal exponent is < -4 or >= 6 (1e+06, 2.592e+06)."""
    if x == 0:
        return "0"
    d = Decimal(repr(float(x))).normalize()
    sign, digits, exponent = d.as_tuple()
    e = len(digits) + exponent - 1
    text = "".join(map(str, digits))
    if e < -4 or e >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return "%s%se%s%02d" % ("-" if sign else "", mant, "-" if e < 0 else "+", abs(e))
    return ("-" if sign else "") + format(abs(d), "f")


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_interval(text, now=None):
    """gtime.ParseInterval: Nd, Nw, NM, Ny by the calendar; otherwise a Go duration (5m, 1h30m, 500ms)."""
    text = text.strip()
    m = re.fullmatch(r"(\d+)([dwMy])", text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if unit == "d":
            return float(n * 86400)
        if unit == "w":
            return float(n * 7 * 86400)
        now = now or datetime.now(timezone.utc)
        months = n if unit == "M" else 12 * n
        y, mo = divmod(now.month - 1 + months, 12)
        later = now.replace(year=now.year + y, month=mo + 1, day=min(now.day, 28))
        return (later - now.replace(day=min(now.day, 28))).total_seconds()
    if re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+", text) is None:
        raise MacroError("error parsing interval %s" % text)
    total = 0.0
    for num, unit in _GO_DURATION.findall(text):
        total += float(num) * {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def format_interval(seconds):
    """The frontend's $__interval text (rangeutil.secondsToHms)."""
    if seconds >= 31536000:
        return "%dy" % (seconds // 31536000)
    if seconds >= 86400:
        return "%dd" % (seconds // 86400)
    if seconds >= 3600:
        return "%dh" % (seconds // 3600)
    if seconds >= 60:
        return "%dm" % (seconds // 60)
    if seconds >= 1:
        return "%ds" % seconds
    ms = int(round(seconds * 1000))
    return "%dms" % ms if ms else "1ms"


# rangeutil.roundInterval: the interval Grafana asks for, from (to - from) / max data points.
_ROUND = [(0.015, 0.01), (0.035, 0.02), (0.075, 0.05), (0.15, 0.1), (0.35, 0.2), (0.75, 0.5), (1.5, 1), (3.5, 2),
          (7.5, 5), (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (150, 120), (450, 300), (750, 600),
          (1050, 900), (1500, 1200), (2700, 1800), (5400, 3600), (9000, 7200), (16200, 10800), (32400, 21600),
          (86400, 43200), (604800, 86400), (1814400, 604800), (3628800, 2592000)]


def query_interval(start, end, max_points, min_interval):
    raw = (end - start).total_seconds() / max(max_points, 1)
    rounded = 31536000
    for limit, value in _ROUND:
        if raw < limit:
            rounded = value
            break
    return max(rounded, min_interval)


def quote_literal(v):
    return "'" + str(v).replace("'", "''") + "'"


def format_value(value, var, fmt):
    """One variable's text in a SQL query (formats per Grafana's templateSrv formatters)."""
    values = value if isinstance(value, list) else [value]
    multi = bool(var.get("multi") or var.get("includeAll"))
    if fmt is None:
        if isinstance(value, list) or multi:
            return ",".join(quote_literal(v) for v in values)
        return str(value).replace("'", "''")
    if fmt not in FORMATS:
        raise MacroError("unknown variable format %r of $%s" % (fmt, var["name"]))
    if fmt in ("raw", "text"):
        return ",".join(str(v) for v in values)
    if fmt in ("sqlstring", "singlequote"):
        return ",".join(quote_literal(v) if fmt == "sqlstring" else "'" + str(v).replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + str(v).replace('"', '\\"') + '"' for v in values)
    if fmt == "csv":
        return ",".join(str(v) for v in values)
    if fmt == "pipe":
        return "|".join(str(v) for v in values)
    raise MacroError("format %r of $%s makes no sense in SQL" % (fmt, var["name"]))


def replace_variables(sql, variables, values):
    """Template variables of a dashboard: variables maps name -> definition, values name -> value
    (a string, or a list for multi-value). Unknown names that are not Grafana's globals are errors."""
    def sub(m):
        name = m.group(1) or m.group(3) or m.group(4)
        fmt = m.group(2) or m.group(5)
        if name in GLOBAL_VARIABLES or name.startswith("__"):
            return m.group(0)  # left for the backend (or a macro)
        if name not in variables:
            raise MacroError("unknown template variable $%s" % name)
        if name not in values:
            raise MacroError("template variable $%s has no value (its query returned no rows?)" % name)
        return format_value(values[name], variables[name], fmt)
    return VARIABLE.sub(sub, sql)


def interpolate(sql, start, end, interval_s, timescaledb):
    """What the backend sends to PostgreSQL for sql (template variables already replaced)."""
    # sqleng.Interpolate (plain text, in this order)
    sql = sql.replace("$__interval_ms", str(int(interval_s * 1000)))
    sql = sql.replace("$__interval", format_interval(interval_s))
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(end.timestamp())))
    original = sql

    def macro(m):
        name, args = m.group(1), [a.strip(" ") for a in m.group(2).split(",")]
        # $__timeGroup directly followed by ',' is the pre-5.3 form that adds AS "time"
        if name == "__timeGroup":
            i = original.find(m.group(0))
            if i >= 0 and original[i + len(m.group(0)):i + len(m.group(0)) + 1] == ",":
                name = "__timeGroupAlias"
        return evaluate(name, args, start, end, timescaledb)

    return MACRO.sub(macro, sql)


def evaluate(name, args, start, end, timescaledb):
    if name == "__time":
        return '%s AS "time"' % _need(name, args)
    if name == "__timeEpoch":
        return 'extract(epoch from %s) as "time"' % _need(name, args)
    if name == "__timeFilter":
        return "%s BETWEEN '%s' AND '%s'" % (_need(name, args), rfc3339nano(start), rfc3339nano(end))
    if name == "__timeFrom":
        return "'%s'" % rfc3339nano(start)
    if name == "__timeTo":
        return "'%s'" % rfc3339nano(end)
    if name in ("__timeGroup", "__timeGroupAlias", "__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise MacroError("macro %s needs time column and interval and optional fill value" % name)
        try:
            seconds = parse_interval(args[1].strip("'"))
        except MacroError:
            raise MacroError("error parsing interval %s" % args[1])
        if len(args) == 3 and args[2] not in ("NULL", "previous"):
            try:
                float(args[2])
            except ValueError:
                raise MacroError("error parsing fill value %s" % args[2])
        alias = ' AS "time"' if name.endswith("Alias") else ""
        if name.startswith("__unixEpoch"):
            return "floor((%s)/%s)*%s%s" % (args[0], go_float(seconds), go_float(seconds), alias)
        if timescaledb:
            return "time_bucket('%.3fs',%s)%s" % (seconds, args[0], alias)
        return "floor(extract(epoch from %s)/%s)*%s%s" % (args[0], go_float(seconds), go_float(seconds), alias)
    if name == "__unixEpochFilter":
        c = _need(name, args)
        return "%s >= %d AND %s <= %d" % (c, int(start.timestamp()), c, int(end.timestamp()))
    if name == "__unixEpochNanoFilter":
        c = _need(name, args)
        return "%s >= %d AND %s <= %d" % (c, _nanos(start), c, _nanos(end))
    if name == "__unixEpochNanoFrom":
        return str(_nanos(start))
    if name == "__unixEpochNanoTo":
        return str(_nanos(end))
    raise MacroError("unknown macro %r" % name)


def _need(name, args):
    if not args or args[0] == "":
        raise MacroError("missing time column argument for macro %s" % name)
    return args[0]


def _nanos(t):
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def relative_time(expr, now):
    """Grafana's relative times: now, now-6h, now-7d, now/d (start of day) — enough for dashboards."""
    m = re.fullmatch(r"now(?:-(\d+)([smhdwMy]))?(?:/([dwMy]))?", expr.strip())
    if not m:
        try:
            return datetime.fromisoformat(expr.replace("Z", "+00:00"))
        except ValueError:
            raise MacroError("cannot parse time %r" % expr)
    t = now
    if m.group(1):
        t = t - timedelta(seconds=parse_interval(m.group(1) + m.group(2), now) if m.group(2) in "dwMy"
                          else int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)])
    if m.group(3) == "d":
        t = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return t


def is_finite_number(x):
    return isinstance(x, (int, float)) and math.isfinite(x)
