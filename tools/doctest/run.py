#!/usr/bin/env python3
"""Tidewatch doc-test runner.

Executes every ```sql block of the Markdown pages under docs/ against a live
PostgreSQL database (one fresh database and one psql session per page) and
compares psql's output with the ```output block that follows the sql block.

See tools/doctest/README.md for the conventions.  Standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

DEFAULT_SETUP_SQL = "CREATE EXTENSION IF NOT EXISTS tidewatch;"
DEFAULT_TIMEOUT = 300.0

PSQL_ARGS = [
    "-X", "-q", "-w",
    "-v", "ON_ERROR_STOP=0",
    "-v", "VERBOSITY=default",
    "-v", "SHOW_CONTEXT=never",
    "--pset=pager=off",
]

PSQL_ENV = {
    "PGTZ": "UTC",
    "PGDATESTYLE": "ISO, MDY",
    "LC_MESSAGES": "C",
    "PGOPTIONS": "-c client_min_messages=notice -c extra_float_digits=0",
    "PGCLIENTENCODING": "UTF8",
    "PGAPPNAME": "tidewatch-doctest",
}

MARKER_FMT = "@@doctest-block {}@@"
END_MARKER = "@@doctest-end@@"
SETUP_ID = "setup"
_MARKER_RE = re.compile(r"^@@doctest-block (\S+)@@$")

ELLIPSIS_LINE = "..."
INLINE_WILDCARD = "[...]"

KIND_SQL = "sql"          # executed, compared with a following output block
KIND_SETUP = "sql-setup"  # executed, hidden from readers, checked for success
KIND_SKIP = "skip"        # not executed (sql-noexec, or `-- doctest: skip`)

_SKIP_LINE_RE = re.compile(r"^--\s*doctest:\s*skip\b", re.IGNORECASE)
_ERROR_RE = re.compile(r"^(ERROR|FATAL|PANIC):")


# --------------------------------------------------------------------------
# Markdown parsing
# --------------------------------------------------------------------------

@dataclass
class Fence:
    """A fenced code block.  Line indices are 0-based into the file's lines."""
    open_idx: int
    close_idx: int          # == len(lines) if the fence is never closed
    indent: str             # leading whitespace of the opening fence line
    char: str               # '`' or '~'
    length: int             # number of fence characters
    info: str               # full info string (stripped)
    content: List[str]      # content lines, indentation removed

    @property
    def lang(self) -> str:
        return self.info.split()[0].lower() if self.info.split() else ""

    @property
    def line(self) -> int:
        """1-based line number of the opening fence."""
        return self.open_idx + 1

    closed: bool = True     # False if the file ended inside the block


@dataclass
class DocBlock:
    kind: str                       # KIND_SQL / KIND_SETUP / KIND_SKIP
    fence: Fence
    output: Optional[Fence] = None  # the ```output block right after it

    @property
    def line(self) -> int:
        return self.fence.line

    @property
    def sql(self) -> str:
        return "\n".join(self.fence.content)


@dataclass
class Problem:
    line: int
    message: str


_OPEN_FENCE_RE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")


def split_lines(text: str) -> Tuple[List[str], str]:
    """Split text into lines (without terminators); return (lines, eol)."""
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = text.replace("\r\n", "\n").split("\n")
    return lines, eol


def parse_fences(lines: Sequence[str]) -> List[Fence]:
    """Find all fenced code blocks (``` or ~~~, possibly indented)."""
    fences: List[Fence] = []
    i = 0
    n = len(lines)
    while i < n:
        m = _OPEN_FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, marks, info = m.group(1), m.group(2), m.group(3)
        char = marks[0]
        if char == "`" and "`" in info:
            # Not a fence (CommonMark: backtick info strings can't contain `).
            i += 1
            continue
        close_re = re.compile(r"^[ \t]*" + re.escape(char) + "{" + str(len(marks)) + r",}[ \t]*$")
        j = i + 1
        while j < n and not close_re.match(lines[j]):
            j += 1
        content = [_dedent(l, len(indent)) for l in lines[i + 1:j]]
        f = Fence(open_idx=i, close_idx=j, indent=indent, char=char,
                  length=len(marks), info=info.strip(), content=content)
        f.closed = j < n
        if not f.closed and content and content[-1] == "":
            # A file ending in "\n" yields a trailing empty pseudo-line.
            f.content = content[:-1]
        fences.append(f)
        i = j + 1
    return fences


def _dedent(line: str, width: int) -> str:
    k = 0
    while k < width and k < len(line) and line[k] in " \t":
        k += 1
    return line[k:]


def _is_blank(line: str) -> bool:
    return line.strip() == ""


def classify(fence: Fence) -> Optional[str]:
    """Return the doctest kind of a fence, or None if it is not executable."""
    lang = fence.lang
    if lang == "sql-noexec":
        return KIND_SKIP
    if lang not in ("sql", "sql-setup"):
        return None
    first = next((l for l in fence.content if l.strip()), "")
    if _SKIP_LINE_RE.match(first.strip()):
        return KIND_SKIP
    return KIND_SQL if lang == "sql" else KIND_SETUP


def extract_blocks(text: str) -> Tuple[List[DocBlock], List[Problem]]:
    """Extract sql/sql-setup/skipped blocks and pair them with output blocks.

    An ```output block belongs to the sql block immediately before it; only
    blank lines may stand between the two.  Output blocks that belong to no
    sql block are reported as problems (they would silently go unchecked).
    """
    lines, _ = split_lines(text)
    fences = parse_fences(lines)
    blocks: List[DocBlock] = []
    problems: List[Problem] = []
    consumed = set()
    for k, f in enumerate(fences):
        kind = classify(f)
        if kind is None:
            continue
        block = DocBlock(kind=kind, fence=f)
        if k + 1 < len(fences):
            nxt = fences[k + 1]
            between = lines[f.close_idx + 1:nxt.open_idx]
            if nxt.lang == "output" and f.closed and all(_is_blank(l) for l in between):
                block.output = nxt
                consumed.add(k + 1)
        blocks.append(block)
    for k, f in enumerate(fences):
        if f.lang == "output" and k not in consumed:
            problems.append(Problem(
                f.line, "output block is not directly after a sql block "
                        "(only blank lines may stand between them)"))
    return blocks, problems


# --------------------------------------------------------------------------
# SQL completeness check (a small subset of psql's lexer)
# --------------------------------------------------------------------------

_IDENT_CHAR_RE = re.compile(r"[\w$\x80-\U0010ffff]")
_DOLLAR_TAG_RE = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$")
_META_RE = re.compile(r"\\([A-Za-z]+|[!?.;\\])")
_SENDING_META = ("g", "gx", "gset", "gexec", "gdesc", "crosstabview", "watch")


def _is_ident_char(ch: str) -> bool:
    return bool(ch) and bool(_IDENT_CHAR_RE.match(ch))


def _is_copy_from_stdin(stmt: str) -> bool:
    s = re.sub(r"--[^\n]*", " ", stmt)
    s = re.sub(r"/\*.*?\*/", " ", s, flags=re.S)
    return bool(re.match(r"\s*copy\b", s, re.I)) and bool(
        re.search(r"\bfrom\s+stdin\b", s, re.I))


def sql_incomplete_reason(sql: str) -> Optional[str]:
    """Return why psql would still be waiting for input after `sql`, or None.

    A block that ends inside a quoted string / dollar quote / comment, or with
    a statement that lacks its terminating ';', would swallow the next block
    (and the runner's marker line), so such blocks are rejected up front.
    """
    i, n = 0, len(sql)
    pending = False      # query buffer holds unsent SQL
    paren = 0
    stmt_start = 0
    copy_data = False
    while i < n:
        if copy_data:
            j = sql.find("\n", i)
            end = n if j == -1 else j
            if sql[i:end].rstrip("\r") == "\\.":
                copy_data = False
            i = end + 1
            continue
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j == -1 else j + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                return "unterminated /* comment"
        elif c == "'":
            prev = sql[i - 1] if i else ""
            prev2 = sql[i - 2] if i >= 2 else ""
            estring = prev in "eE" and prev != "" and not _is_ident_char(prev2)
            i += 1
            while True:
                if i >= n:
                    return "unterminated quoted string"
                ch = sql[i]
                if estring and ch == "\\":
                    i += 2
                elif ch == "'":
                    if sql.startswith("''", i):
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
            pending = True
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    return "unterminated quoted identifier"
                if sql.startswith('""', i):
                    i += 2
                elif sql[i] == '"':
                    i += 1
                    break
                else:
                    i += 1
            pending = True
        elif c == "$":
            m = _DOLLAR_TAG_RE.match(sql, i)
            if m and not _is_ident_char(sql[i - 1] if i else ""):
                tag = m.group(0)
                j = sql.find(tag, m.end())
                if j == -1:
                    return "unterminated dollar-quoted string " + tag
                i = j + len(tag)
            else:
                i += 1
            pending = True
        elif c == "(":
            paren += 1
            pending = True
            i += 1
        elif c == ")":
            paren = max(0, paren - 1)
            pending = True
            i += 1
        elif c == ";":
            i += 1
            if paren == 0:
                stmt = sql[stmt_start:i]
                pending = False
                stmt_start = i
                if _is_copy_from_stdin(stmt):
                    j = sql.find("\n", i)
                    i = n if j == -1 else j + 1
                    copy_data = True
                    stmt_start = i
            else:
                pending = True
        elif c == "\\":
            m = _META_RE.match(sql, i)
            cmd = m.group(1) if m else ""
            if cmd == ";":
                pending = True
                i += 2
                continue
            if cmd == "\\":
                i += 2
                continue
            j = sql.find("\n", i)
            end = n if j == -1 else j
            args = sql[i + 1 + len(cmd):end]
            i = end
            if cmd in _SENDING_META or cmd == "r":
                pending = False
                paren = 0
                stmt_start = i
            elif cmd == "copy" and re.search(r"\bfrom\s+stdin\b", args, re.I):
                copy_data = True
                i = n if j == -1 else j + 1
                stmt_start = i
        else:
            pending = True
            i += 1
    if copy_data:
        return "COPY ... FROM stdin data is not terminated by a line '\\.'"
    if paren:
        return "unbalanced parentheses at end of block"
    if pending:
        return "statement at end of block is not terminated by ';'"
    return None


# --------------------------------------------------------------------------
# Script generation and output splitting
# --------------------------------------------------------------------------

def marker(block_id) -> str:
    return MARKER_FMT.format(block_id)


def echo_marker(block_id) -> str:
    return "\\echo '" + marker(block_id) + "'"


def build_script(blocks: Sequence[Tuple[str, str, int]], setup_sql: str
                 ) -> Tuple[str, Dict[int, int]]:
    """Build the psql script for one file.

    blocks: (block_id, sql, md_line_of_first_content_line) in order.
    Returns (script, linemap) where linemap maps a 1-based script line to the
    corresponding 1-based Markdown line (only for lines that come from docs).
    """
    out: List[str] = []
    linemap: Dict[int, int] = {}
    out.append(echo_marker(SETUP_ID))
    out.extend(setup_sql.split("\n"))
    for block_id, sql, first_md_line in blocks:
        out.append(echo_marker(block_id))
        for k, l in enumerate(sql.split("\n")):
            out.append(l)
            linemap[len(out)] = first_md_line + k
    out.append("\\echo '" + END_MARKER + "'")
    return "\n".join(out) + "\n", linemap


def strip_psql_prefix(line: str, script_path: Optional[str]) -> Tuple[str, Optional[int]]:
    """Remove the 'psql:<file>:<line>: ' prefix psql puts on messages.

    Returns (line_without_prefix, script_line_number or None).
    """
    if script_path is None:
        pat = r"^psql:(?:<stdin>|[^\n]*?):(\d+): "
    else:
        pat = r"^psql:(?:" + re.escape(script_path) + r"|<stdin>):(\d+): "
    m = re.match(pat, line)
    if not m:
        return line, None
    return line[m.end():], int(m.group(1))


@dataclass
class OutLine:
    text: str
    script_line: Optional[int] = None  # set when psql prefixed the line

    @property
    def is_error(self) -> bool:
        if _ERROR_RE.match(self.text):
            return True
        # psql's own (client-side) errors: "psql:file:3: error: invalid command"
        return self.script_line is not None and self.text.startswith("error: ")


@dataclass
class Split:
    preamble: List[OutLine] = field(default_factory=list)
    sections: Dict[str, List[OutLine]] = field(default_factory=dict)
    order: List[str] = field(default_factory=list)
    ended: bool = False

    def complete(self, block_id: str) -> bool:
        """True if the output of block_id was fully captured."""
        if block_id not in self.sections:
            return False
        return self.ended or self.order.index(block_id) < len(self.order) - 1


def split_output(raw: str, script_path: Optional[str]) -> Split:
    """Split psql's merged stdout/stderr into per-block sections by marker."""
    res = Split()
    current = res.preamble
    lines = raw.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        if line == END_MARKER:
            res.ended = True
            current = []   # anything after the end marker is ignored
            continue
        m = _MARKER_RE.match(line)
        if m:
            bid = m.group(1)
            current = []
            res.sections[bid] = current
            res.order.append(bid)
            continue
        text, sline = strip_psql_prefix(line, script_path)
        current.append(OutLine(text, sline))
    return res


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def normalize(lines: Sequence[str]) -> List[str]:
    """Strip trailing whitespace per line and leading/trailing blank lines."""
    out = [l.rstrip() for l in lines]
    while out and out[0] == "":
        out.pop(0)
    while out and out[-1] == "":
        out.pop()
    return out


_LINE_RE_CACHE: Dict[str, "re.Pattern[str]"] = {}


def line_matches(expected: str, actual: str) -> bool:
    """Compare one line; `[...]` in expected matches any run of characters."""
    expected, actual = expected.rstrip(), actual.rstrip()
    if INLINE_WILDCARD not in expected:
        return expected == actual
    rx = _LINE_RE_CACHE.get(expected)
    if rx is None:
        rx = re.compile(".*".join(re.escape(p) for p in expected.split(INLINE_WILDCARD)), re.S)
        _LINE_RE_CACHE[expected] = rx
    return rx.fullmatch(actual) is not None


def is_ellipsis(line: str) -> bool:
    return line.strip() == ELLIPSIS_LINE


def match_lines(expected: Sequence[str], actual: Sequence[str]) -> bool:
    """Match line lists; an expected line `...` matches zero or more lines."""
    n, m = len(expected), len(actual)
    # nxt[j]: does expected[i+1:] match actual[j:]  (dynamic programming,
    # iterating i from the end so no recursion limit applies)
    nxt = [False] * (m + 1)
    nxt[m] = True
    for i in range(n - 1, -1, -1):
        cur = [False] * (m + 1)
        if is_ellipsis(expected[i]):
            cur[m] = nxt[m]
            for j in range(m - 1, -1, -1):
                cur[j] = nxt[j] or cur[j + 1]
        else:
            for j in range(m - 1, -1, -1):
                cur[j] = nxt[j + 1] and line_matches(expected[i], actual[j])
        nxt = cur
    return nxt[0]


def uncovered_errors(expected: Sequence[str], actual: Sequence[OutLine]) -> List[OutLine]:
    """Error lines of actual output that no (non-`...`) expected line shows."""
    literal = [e for e in expected if not is_ellipsis(e)]
    return [a for a in actual
            if a.is_error and not any(line_matches(e, a.text) for e in literal)]


def unified_diff(expected: Sequence[str], actual: Sequence[str]) -> List[str]:
    return list(difflib.unified_diff(list(expected), list(actual),
                                     "expected", "actual", lineterm=""))


# --------------------------------------------------------------------------
# --update rewriting
# --------------------------------------------------------------------------

@dataclass
class Update:
    """Replace the content of `output` fence, or (output=None) create an
    output block right after the sql fence `after`."""
    new_content: List[str]
    output: Optional[Fence] = None
    after: Optional[Fence] = None


def _fence_len_for(content: Sequence[str], char: str, minimum: int) -> int:
    longest = 0
    for l in content:
        m = re.match(r"[ \t]*(" + re.escape(char) + "+)", l)
        if m:
            longest = max(longest, len(m.group(1)))
    return longest + 1 if longest >= minimum else minimum


def _indent_content(indent: str, content: Sequence[str]) -> List[str]:
    return [(indent + l) if l else "" for l in content]


def apply_updates(text: str, updates: Sequence[Update]) -> str:
    """Return `text` with the given output blocks rewritten / created."""
    lines, eol = split_lines(text)

    def pos(u: Update) -> int:
        return u.output.open_idx if u.output is not None else u.after.close_idx

    for u in sorted(updates, key=pos, reverse=True):
        if u.output is not None:
            f = u.output
            flen = _fence_len_for(u.new_content, f.char, f.length)
            opening = f.indent + f.char * flen + f.info
            closing = f.indent + f.char * flen
            body = _indent_content(f.indent, u.new_content)
            if f.closed:
                old_close = lines[f.close_idx]
                if flen == f.length:
                    opening, closing = lines[f.open_idx], old_close
                lines[f.open_idx:f.close_idx + 1] = [opening] + body + [closing]
            else:
                tail = lines[f.close_idx:]  # nothing, or the trailing ''
                lines[f.open_idx:] = [opening] + body + [closing] + (tail or [""])
        else:
            s = u.after
            flen = _fence_len_for(u.new_content, "`", 3)
            new = ([""] + [s.indent + "`" * flen + "output"]
                   + _indent_content(s.indent, u.new_content)
                   + [s.indent + "`" * flen])
            at = s.close_idx + 1
            if at < len(lines) and not _is_blank(lines[at]):
                new.append("")
            lines[at:at] = new
    return eol.join(lines)


# --------------------------------------------------------------------------
# Database plumbing
# --------------------------------------------------------------------------

def drop_database(psql: str, admin_conn: str, dbname: str, timeout: float) -> None:
    """DROP DATABASE ... WITH (FORCE), a few tries. Tidewatch's decoder of async monitors holds
    the database's replication slot for a moment per poll, and DROP DATABASE refuses while a slot
    is active (FORCE or not): stop the decoder, then drop; it may have started again, so retry."""
    lit = "'" + dbname.replace("'", "''") + "'"
    for attempt in range(5):
        try:
            run_admin(psql, admin_conn, [
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'tidewatch decoder'" % lit,
                "DROP DATABASE IF EXISTS %s WITH (FORCE)" % quote_ident(dbname)], timeout)
            return
        except FileError:
            if attempt == 4:
                raise
            time.sleep(0.5)


def db_name_for(path: Path) -> str:
    stem = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or "doc"
    return ("doctest_" + stem)[:63]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dsn_with_dbname(dsn: Optional[str], dbname: str) -> str:
    """Return a psql -d argument that connects like `dsn` but to `dbname`."""
    if not dsn:
        return dbname
    if re.match(r"^postgres(ql)?://", dsn):
        parts = urllib.parse.urlsplit(dsn)
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                 if k != "dbname"]
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc,
                                        "/" + urllib.parse.quote(dbname, safe=""),
                                        urllib.parse.urlencode(query), parts.fragment))
    # key=value conninfo: a later keyword overrides an earlier one.
    value = dbname.replace("\\", "\\\\").replace("'", "\\'")
    return dsn.rstrip() + " dbname='" + value + "'"


def psql_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("LC_ALL", None)  # would override LC_MESSAGES
    env.update(PSQL_ENV)
    return env


class FileError(Exception):
    pass


def run_admin(psql: str, conn: str, commands: Sequence[str], timeout: float) -> None:
    cmd = [psql, "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-d", conn]
    for c in commands:
        cmd += ["-c", c]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=psql_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FileError("timed out after %gs: %s" % (timeout, "; ".join(commands)))
    except OSError as e:
        raise FileError("cannot run %s: %s" % (psql, e))
    if p.returncode != 0:
        raise FileError("%s failed (exit %d):\n%s" % (
            "; ".join(commands), p.returncode,
            p.stdout.decode("utf-8", "replace").rstrip()))


# --------------------------------------------------------------------------
# Running one file
# --------------------------------------------------------------------------

@dataclass
class Result:
    line: int
    status: str                     # "ok", "FAIL", "skip"
    details: List[str] = field(default_factory=list)
    label: str = ""                 # overrides ":<line>" (e.g. " (setup)")
    counted: bool = True            # False for file-level notes about blocks


@dataclass
class Options:
    dsn: Optional[str]
    setup_sql: str
    keep: bool
    update: bool
    update_create: bool
    timeout: float
    psql: str


def display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _fmt_lines(prefix: str, lines: Sequence[str]) -> List[str]:
    return [prefix + l for l in lines]


def run_file(path: Path, opts: Options) -> Tuple[List[Result], Optional[str]]:
    """Run one Markdown file.  Returns (results, new_text or None)."""
    text = path.read_bytes().decode("utf-8")
    shown = display_path(path)
    blocks, problems = extract_blocks(text)
    results: List[Result] = [Result(p.line, "FAIL", [p.message]) for p in problems]

    runnable: List[Tuple[str, DocBlock]] = []
    for idx, b in enumerate(blocks):
        if b.kind == KIND_SKIP:
            results.append(Result(b.line, "skip"))
            continue
        reason = sql_incomplete_reason(b.sql)
        if reason:
            results.append(Result(b.line, "FAIL", [
                "not run: " + reason + " (it would swallow the following blocks)"]))
            continue
        runnable.append((str(idx + 1), b))

    if not runnable:
        return sorted(results, key=lambda r: r.line), None

    setup_sql = opts.setup_sql
    if sql_incomplete_reason(setup_sql) == "statement at end of block is not terminated by ';'":
        setup_sql = setup_sql + "\n;"
    setup_problem = sql_incomplete_reason(setup_sql)
    if setup_problem:
        raise SystemExit("doctest: --setup-sql is not complete SQL: " + setup_problem)

    dbname = db_name_for(path)
    admin_conn = opts.dsn if opts.dsn else os.environ.get("PGDATABASE") or "postgres"
    doc_conn = dsn_with_dbname(opts.dsn, dbname)
    env = psql_env()

    def fail_all(msg: List[str]) -> List[Result]:
        # One file-level line with the reason, then every runnable block fails.
        head = Result(0, "FAIL", msg, label=" (not run)", counted=False)
        return [head] + sorted(
            results + [Result(b.line, "FAIL", ["not run (see above)"]) for _, b in runnable],
            key=lambda r: r.line)

    try:
        drop_database(opts.psql, admin_conn, dbname, opts.timeout)
        run_admin(opts.psql, admin_conn, ["CREATE DATABASE %s" % quote_ident(dbname)], opts.timeout)
    except FileError as e:
        return fail_all(["could not create database %s: %s" % (dbname, e)]), None

    tmpdir = tempfile.mkdtemp(prefix="tidewatch-doctest-")
    try:
        script, linemap = build_script(
            [(bid, b.sql, b.fence.line + 1) for bid, b in runnable], setup_sql)
        script_path = os.path.join(tmpdir, dbname + ".sql")
        with open(script_path, "w", encoding="utf-8") as fh:
            fh.write(script)
        cmd = [opts.psql] + PSQL_ARGS + ["-d", doc_conn, "-f", script_path]
        timed_out = False
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, timeout=opts.timeout)
            raw, rc = p.stdout, p.returncode
        except subprocess.TimeoutExpired as e:
            raw, rc, timed_out = e.output or b"", None, True
        except OSError as e:
            return fail_all(["cannot run %s: %s" % (opts.psql, e)]), None
        split = split_output(raw.decode("utf-8", "replace"), script_path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        if not opts.keep:
            try:
                drop_database(opts.psql, admin_conn, dbname, opts.timeout)
            except FileError as e:
                print("doctest: warning: could not drop database %s: %s" % (dbname, e),
                      file=sys.stderr)

    def where(ol: OutLine) -> str:
        if ol.script_line is not None and ol.script_line in linemap:
            return " (%s:%d)" % (shown, linemap[ol.script_line])
        return ""

    if timed_out:
        lost = ["no output: psql timed out after %gs (--timeout)" % opts.timeout]
    else:
        tail = [ol.text for ol in split.preamble][-10:]
        lost = ["no output: psql stopped before this block finished (exit code %s)" % rc]
        lost += _fmt_lines("| ", tail)

    # Setup SQL errors are reported once, as an extra failure.
    setup_lines = split.sections.get(SETUP_ID)
    if split.complete(SETUP_ID):
        errs = [ol.text for ol in setup_lines if ol.is_error]
        if errs:
            results.append(Result(0, "FAIL", ["setup SQL failed: " + opts.setup_sql]
                                  + _fmt_lines("| ", [ol.text for ol in setup_lines]),
                                  label=" (setup)"))

    updates: List[Update] = []
    for bid, b in runnable:
        if not split.complete(bid):
            results.append(Result(b.line, "FAIL", lost))
            continue
        got = split.sections[bid]
        actual = normalize([ol.text for ol in got])
        details: List[str] = []
        if b.output is not None:
            expected = normalize(b.output.content)
            ok = match_lines(expected, actual)
            if not ok:
                details += unified_diff(expected, actual)
            missing = uncovered_errors(expected, got)
            if missing:
                ok = False
                details = ["ERROR not shown in the expected output:"] + [
                    "| " + ol.text + where(ol) for ol in missing] + details
            if not ok and opts.update:
                updates.append(Update(new_content=actual, output=b.output))
        else:
            errs = [ol for ol in got if ol.is_error]
            ok = not errs
            if errs:
                details = ["unexpected ERROR (add an ```output block to show it on purpose):"]
                details += ["| " + ol.text + where(ol) for ol in errs]
                details += ["output:"] + _fmt_lines("| ", actual)
            if opts.update and opts.update_create and b.kind == KIND_SQL and actual:
                updates.append(Update(new_content=actual, after=b.fence))
        results.append(Result(b.line, "ok" if ok else "FAIL", details))

    new_text = apply_updates(text, updates) if updates else None
    return sorted(results, key=lambda r: r.line), new_text


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def default_docs_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "docs"


def collect_files(args: Sequence[str]) -> List[Path]:
    files: List[Path] = []
    for a in args:
        p = Path(a)
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.md") if q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise SystemExit("doctest: no such file or directory: %s" % a)
    seen, out = set(), []
    for f in files:
        k = f.resolve()
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="run.py",
        description="Run the ```sql blocks of Markdown docs against PostgreSQL "
                    "and compare with the ```output blocks.")
    ap.add_argument("paths", nargs="*",
                    help="Markdown files or directories (searched recursively for "
                         "*.md); default: the repository's docs/")
    ap.add_argument("--dsn", help="libpq connection string or URI (passed as psql -d); "
                                  "default: PG* environment variables")
    ap.add_argument("--setup-sql", default=DEFAULT_SETUP_SQL,
                    help="SQL run in each fresh database before the first block "
                         "(default: %(default)s)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the doctest_<stem> databases after the run")
    ap.add_argument("--update", action="store_true",
                    help="rewrite failing output blocks in place with the actual output")
    ap.add_argument("--update-create", action="store_true",
                    help="with --update: also add an output block after sql blocks "
                         "that have none (if they print anything)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                    help="timeout per file in seconds (default: %(default)g)")
    ap.add_argument("--psql", default="psql", help="psql executable (default: psql)")
    ns = ap.parse_args(argv)
    if ns.update_create and not ns.update:
        ap.error("--update-create requires --update")

    paths = ns.paths or [str(default_docs_dir())]
    files = collect_files(paths)
    opts = Options(dsn=ns.dsn, setup_sql=ns.setup_sql, keep=ns.keep, update=ns.update,
                   update_create=ns.update_create, timeout=ns.timeout, psql=ns.psql)

    passed = failed = skipped = 0
    for f in files:
        shown = display_path(f)
        results, new_text = run_file(f, opts)
        for r in results:
            label = r.label or ":%d" % r.line
            tag = {"ok": "ok  ", "FAIL": "FAIL", "skip": "skip"}[r.status]
            print("%s %s%s" % (tag, shown, label), flush=True)
            for d in r.details:
                for dl in d.split("\n"):
                    print("    " + dl)
            if not r.counted:
                pass
            elif r.status == "ok":
                passed += 1
            elif r.status == "skip":
                skipped += 1
            else:
                failed += 1
        if new_text is not None:
            f.write_bytes(new_text.encode("utf-8"))
            print("updated %s" % shown, flush=True)

    summary = "doctest: %d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    if passed + failed == 0:
        print("doctest: no executable sql blocks found in: %s" % ", ".join(paths),
              file=sys.stderr, flush=True)
        print(summary, flush=True)
        return 1
    print(summary, flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
