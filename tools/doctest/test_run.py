"""Unit tests for the pure parts of tools/doctest/run.py (no database needed).

Run: python3 -m unittest discover -s tools/doctest -p 'test_*.py'
"""

import contextlib
import io
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402


DOC = """\
# Title

```sql-setup
CREATE TABLE t (a int);
```

Some prose.

```sql
SELECT 1 AS a;
```

```output
 a
---
 1
(1 row)
```

```sql
INSERT INTO t VALUES (1);
```

Prose between, so the next output block is orphaned.

```output
nothing
```

```sql
-- doctest: skip
SELECT * FROM nope;
```

```sql-noexec
DROP TABLE t;
```

```bash
echo not sql
```
```output
belongs to bash block -> orphan
```
"""


class ExtractBlocksTest(unittest.TestCase):
    def test_kinds_lines_and_pairing(self):
        blocks, problems = run.extract_blocks(DOC)
        self.assertEqual([(b.kind, b.line) for b in blocks], [
            ("sql-setup", 3), ("sql", 9), ("sql", 20), ("skip", 30), ("skip", 35)])
        self.assertEqual(blocks[0].sql, "CREATE TABLE t (a int);")
        self.assertIsNone(blocks[0].output)
        self.assertIsNotNone(blocks[1].output)
        self.assertEqual(blocks[1].output.line, 13)
        self.assertEqual(blocks[1].output.content, [" a", "---", " 1", "(1 row)"])
        self.assertIsNone(blocks[2].output)
        self.assertEqual([p.line for p in problems], [26, 42])
        self.assertIn("not directly after a sql block", problems[0].message)

    def test_tilde_indented_and_long_fences(self):
        text = ("1. step\n"
                "\n"
                "   ~~~~sql\n"
                "   SELECT '```';\n"
                "   ~~~~\n"
                "\n"
                "   ````output\n"
                "    ?column?\n"
                "   ```\n"
                "   ````\n")
        blocks, problems = run.extract_blocks(text)
        self.assertEqual(problems, [])
        self.assertEqual(len(blocks), 1)
        self.assertEqual(blocks[0].line, 3)
        self.assertEqual(blocks[0].sql, "SELECT '```';")
        self.assertEqual(blocks[0].output.content, [" ?column?", "```"])
        self.assertEqual(blocks[0].output.indent, "   ")

    def test_info_string_words_and_case(self):
        blocks, _ = run.extract_blocks("```SQL title=x\nselect 1;\n```\n```sql-setup\n```\n")
        self.assertEqual([b.kind for b in blocks], ["sql", "sql-setup"])
        self.assertEqual(blocks[1].sql, "")

    def test_skip_marker_must_be_first_nonblank_line(self):
        blocks, _ = run.extract_blocks(
            "```sql\n\n--doctest: SKIP\nx\n```\n```sql\nselect 1;\n-- doctest: skip\n```\n")
        self.assertEqual([b.kind for b in blocks], ["skip", "sql"])

    def test_unclosed_fence_runs_to_eof_and_gets_no_output(self):
        blocks, problems = run.extract_blocks("```sql\nselect 1;\n\n```output\n")
        self.assertEqual(len(blocks), 1)
        self.assertEqual(blocks[0].fence.content, ["select 1;", "", "```output"])
        self.assertFalse(blocks[0].fence.closed)
        self.assertIsNone(blocks[0].output)
        self.assertEqual(problems, [])

    def test_crlf(self):
        blocks, _ = run.extract_blocks("```sql\r\nselect 1;\r\n```\r\n\r\n```output\r\nx\r\n```\r\n")
        self.assertEqual(blocks[0].sql, "select 1;")
        self.assertEqual(blocks[0].output.content, ["x"])


class ScriptAndSplitTest(unittest.TestCase):
    def test_build_script(self):
        script, linemap = run.build_script(
            [("1", "select 1;", 10), ("3", "select 2;\nselect 3;", 20)], "select 0;")
        self.assertEqual(script, "\\echo '@@doctest-block setup@@'\n"
                                 "select 0;\n"
                                 "\\echo '@@doctest-block 1@@'\n"
                                 "select 1;\n"
                                 "\\echo '@@doctest-block 3@@'\n"
                                 "select 2;\n"
                                 "select 3;\n"
                                 "\\echo '@@doctest-end@@'\n")
        self.assertEqual(linemap, {4: 10, 6: 20, 7: 21})

    def test_split_output(self):
        raw = ("psql: warning: something before\n"
               "@@doctest-block setup@@\n"
               "@@doctest-block 1@@\n"
               " a \n---\n 1\n(1 row)\n\n"
               "psql:/tmp/x/doc.sql:7: ERROR:  boom\n"
               "LINE 1: select boom;\n"
               "@@doctest-block 2@@\n"
               "partial\n")
        sp = run.split_output(raw, "/tmp/x/doc.sql")
        self.assertEqual([l.text for l in sp.preamble], ["psql: warning: something before"])
        self.assertEqual(sp.order, ["setup", "1", "2"])
        self.assertEqual(sp.sections["setup"], [])
        self.assertEqual([l.text for l in sp.sections["1"]],
                         [" a ", "---", " 1", "(1 row)", "", "ERROR:  boom", "LINE 1: select boom;"])
        self.assertEqual(sp.sections["1"][5].script_line, 7)
        self.assertTrue(sp.sections["1"][5].is_error)
        self.assertFalse(sp.sections["1"][6].is_error)
        self.assertTrue(sp.complete("1"))
        self.assertFalse(sp.complete("2"))   # no later marker, no end marker
        self.assertFalse(sp.complete("9"))
        self.assertFalse(sp.ended)

        sp2 = run.split_output(raw + "@@doctest-end@@\n", "/tmp/x/doc.sql")
        self.assertTrue(sp2.ended)
        self.assertTrue(sp2.complete("2"))
        self.assertEqual([l.text for l in sp2.sections["2"]], ["partial"])


class PrefixTest(unittest.TestCase):
    def test_strip_known_path(self):
        self.assertEqual(run.strip_psql_prefix("psql:/tmp/a b/x.sql:12: ERROR:  oops", "/tmp/a b/x.sql"),
                         ("ERROR:  oops", 12))

    def test_path_is_not_a_regex(self):
        line = "psql:/tmp/aXb.sql:3: NOTICE:  hi"
        self.assertEqual(run.strip_psql_prefix(line, "/tmp/a.b.sql"), (line, None))
        self.assertEqual(run.strip_psql_prefix("psql:/tmp/a.b.sql:3: NOTICE:  hi", "/tmp/a.b.sql"),
                         ("NOTICE:  hi", 3))

    def test_stdin_and_any_path(self):
        self.assertEqual(run.strip_psql_prefix("psql:<stdin>:5: WARNING:  w", "/x.sql"),
                         ("WARNING:  w", 5))
        self.assertEqual(run.strip_psql_prefix("psql:/any/where.sql:77: error: invalid command \\foo", None),
                         ("error: invalid command \\foo", 77))

    def test_non_prefixed_lines_unchanged(self):
        for line in ["LINE 1: select x;", " psql:/x.sql:1: indented", "DETAIL:  Key (a)=(1)", ""]:
            self.assertEqual(run.strip_psql_prefix(line, "/x.sql"), (line, None))

    def test_client_error_classification(self):
        self.assertTrue(run.OutLine("error: invalid command \\foo", 3).is_error)
        self.assertFalse(run.OutLine("error: in a result cell", None).is_error)
        self.assertTrue(run.OutLine("FATAL:  terminating connection", None).is_error)
        self.assertFalse(run.OutLine(" ERROR: inside a table cell", None).is_error)


class MatcherTest(unittest.TestCase):
    def test_normalize(self):
        self.assertEqual(run.normalize(["", "  ", " a  ", "", "b\t", "", ""]), [" a", "", "b"])

    def test_exact(self):
        self.assertTrue(run.match_lines([" a", "---"], [" a ", "---"]))
        self.assertFalse(run.match_lines([" a", "---"], [" a", "---", " 1"]))
        self.assertFalse(run.match_lines([" a"], ["a"]))   # leading space matters
        self.assertTrue(run.match_lines([], []))
        self.assertFalse(run.match_lines([], ["x"]))

    def test_ellipsis_line(self):
        act = ["h", "1", "2", "3", "(3 rows)"]
        self.assertTrue(run.match_lines(["h", "...", "(3 rows)"], act))
        self.assertTrue(run.match_lines(["...", "(3 rows)"], act))
        self.assertTrue(run.match_lines(["h", "..."], act))
        self.assertTrue(run.match_lines(["..."], []))
        self.assertTrue(run.match_lines(["h", "...", "1", "...", "(3 rows)"], act))
        # zero lines
        self.assertTrue(run.match_lines(["h", "...", "1", "2", "3", "(3 rows)"], act))
        self.assertFalse(run.match_lines(["h", "...", "(2 rows)"], act))
        self.assertFalse(run.match_lines(["h", "...", "3", "2"], act))

    def test_inline_wildcard(self):
        self.assertTrue(run.line_matches(" [...] kB", " 8192 kB"))
        self.assertTrue(run.line_matches(" [...] kB", "  kB"))           # empty run
        self.assertFalse(run.line_matches(" [...] kB", " 8192 MB"))
        self.assertTrue(run.line_matches("oid [...], size [...]", "oid 16384, size 42"))
        self.assertFalse(run.line_matches("a[...]", "ba"))               # anchored at start
        self.assertFalse(run.line_matches("[...] kB", "8 kB extra"))     # anchored at end
        self.assertTrue(run.line_matches("x.y (1)", "x.y (1)"))          # regex chars literal
        self.assertFalse(run.line_matches("x.y", "xzy"))
        self.assertTrue(run.match_lines(["Time: [...] ms", "..."], ["Time: 1.5 ms", "a", "b"]))

    def test_large_input_no_recursion_limit(self):
        act = [str(i) for i in range(5000)]
        self.assertTrue(run.match_lines(["0", "...", "4999"], act))
        self.assertTrue(run.match_lines(act, act))

    def test_uncovered_errors(self):
        got = [run.OutLine("ERROR:  duplicate key", 4), run.OutLine("DETAIL:  Key (a)=(1)", None)]
        self.assertEqual(run.uncovered_errors(["ERROR:  duplicate key", "DETAIL: [...]"], got), [])
        self.assertEqual(run.uncovered_errors(["ERROR:  [...]"], got), [])
        # `...` alone does not count as showing the error
        self.assertEqual([o.text for o in run.uncovered_errors(["..."], got)], ["ERROR:  duplicate key"])

    def test_diff(self):
        self.assertEqual(run.unified_diff([" a", " 1"], [" a", " 2"]),
                         ["--- expected", "+++ actual", "@@ -1,2 +1,2 @@", "  a", "- 1", "+ 2"])


class IncompleteSqlTest(unittest.TestCase):
    def ok(self, sql):
        self.assertIsNone(run.sql_incomplete_reason(sql), sql)

    def bad(self, sql, word):
        r = run.sql_incomplete_reason(sql)
        self.assertIsNotNone(r, sql)
        self.assertIn(word, r)

    def test_complete(self):
        self.ok("")
        self.ok("-- just a comment\n")
        self.ok("/* c /* nested */ */")
        self.ok("select 1;")
        self.ok("select 'a;b''c' ; select \"x;\"\"y\" from t;")
        self.ok("select E'it\\'s';")
        self.ok("select $1 + 1;")
        self.ok("do $$ begin raise notice 'x;'; end $$;")
        self.ok("create function f() returns int language sql as $body$ select 1; $body$;")
        self.ok("select 1 \\gx")
        self.ok("\\set x 1\n\\pset format unaligned\nselect :x;")
        self.ok("copy t from stdin;\n1\tit's\n\\.\nselect 1;")
        self.ok("\\copy t from stdin\n1\t'\n\\.\n")

    def test_incomplete(self):
        self.bad("select 1", "not terminated by ';'")
        self.bad("select 1; select 2", "not terminated")
        self.bad("select 'abc;", "quoted string")
        self.bad("select 'it\\'s';", "quoted string")   # standard string: \ is literal
        self.bad('select "x;', "quoted identifier")
        self.bad("do $f$ begin end $$;", "dollar-quoted")
        self.bad("/* open", "comment")
        self.bad("select (1;", "parentheses")
        self.bad("select 1 \\; ", "not terminated")
        self.bad("copy t from stdin;\n1\n", "COPY")


class UpdateTest(unittest.TestCase):
    def test_replace_output(self):
        text = "```sql\nselect 2;\n```\n\n```output\n old\n...\n```\ntail\n"
        blocks, _ = run.extract_blocks(text)
        new = run.apply_updates(text, [run.Update([" two", "-----", "   2", "(1 row)"], output=blocks[0].output)])
        self.assertEqual(new, "```sql\nselect 2;\n```\n\n```output\n two\n-----\n   2\n(1 row)\n```\ntail\n")

    def test_create_output(self):
        text = "```sql\nselect 1;\n```\nNext paragraph.\n\n```sql\nselect 2;\n```\n"
        blocks, _ = run.extract_blocks(text)
        new = run.apply_updates(text, [run.Update(["a"], after=blocks[0].fence),
                                       run.Update(["b", "", "c"], after=blocks[1].fence)])
        self.assertEqual(new, "```sql\nselect 1;\n```\n\n```output\na\n```\n\nNext paragraph.\n\n"
                              "```sql\nselect 2;\n```\n\n```output\nb\n\nc\n```\n")
        blocks2, problems2 = run.extract_blocks(new)
        self.assertEqual(problems2, [])
        self.assertEqual([b.output.content for b in blocks2], [["a"], ["b", "", "c"]])

    def test_indented_crlf_and_fence_lengthening(self):
        text = "- item\r\n\r\n  ```sql\r\n  select 1;\r\n  ```\r\n  ```output\r\n  x\r\n  ```\r\n"
        blocks, _ = run.extract_blocks(text)
        new = run.apply_updates(text, [run.Update(["```", "y"], output=blocks[0].output)])
        self.assertEqual(new, "- item\r\n\r\n  ```sql\r\n  select 1;\r\n  ```\r\n"
                              "  ````output\r\n  ```\r\n  y\r\n  ````\r\n")
        blocks2, _ = run.extract_blocks(new)
        self.assertEqual(blocks2[0].output.content, ["```", "y"])

    def test_unclosed_output_gets_closed(self):
        text = "```sql\nselect 1;\n```\n```output\nold\n"
        blocks, _ = run.extract_blocks(text)
        new = run.apply_updates(text, [run.Update(["new"], output=blocks[0].output)])
        self.assertEqual(new, "```sql\nselect 1;\n```\n```output\nnew\n```\n")


class MiscTest(unittest.TestCase):
    def test_db_name(self):
        self.assertEqual(run.db_name_for(Path("docs/Hyper-Tables.md")), "doctest_hyper_tables")
        self.assertEqual(run.db_name_for(Path("docs/" + "x" * 100 + ".md")), "doctest_" + "x" * 55)

    def test_dsn_with_dbname(self):
        self.assertEqual(run.dsn_with_dbname(None, "doctest_a"), "doctest_a")
        self.assertEqual(run.dsn_with_dbname("host=/tmp port=5 dbname=postgres", "doctest_a"),
                         "host=/tmp port=5 dbname=postgres dbname='doctest_a'")
        self.assertEqual(run.dsn_with_dbname("postgresql://u@h:5/postgres?sslmode=disable&dbname=z", "doctest_a"),
                         "postgresql://u@h:5/doctest_a?sslmode=disable")
        self.assertEqual(run.dsn_with_dbname("postgres://h", "doctest_a"), "postgres://h/doctest_a")

    def test_no_blocks_exits_1(self):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "a.md").write_text("# nothing\n```bash\nls\n```\n```sql\n-- doctest: skip\n```\n")
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = run.main([d, "--dsn", "host=/nonexistent port=1"])
        self.assertEqual(rc, 1)
        self.assertEqual(out.getvalue().splitlines()[-1], "doctest: 0 passed, 0 failed, 1 skipped")
        self.assertIn("no executable sql blocks", err.getvalue())


if __name__ == "__main__":
    unittest.main()
