"""Structural rules of the installed extension that keep old defects from coming back (issue 15).

- No function takes SQL text to run: a function that builds a query takes a relation (regclass)
  and column names, and quotes them itself (`_mine_query` and `_train_log_classifier` took SQL
  text up to 0.2.0's development).
- No function returns a model as hex inside JSON: the training aggregate returns a row.
"""
import unittest

from pgtest import fresh_database, one, psql, require_cluster

# Argument names that, with type text, mean "SQL to run".
SQL_ARGS = ("query", "sql", "statement", "command")


@require_cluster
class CodeHealthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()

    def test_no_function_takes_sql_text(self):
        rows = psql(
            "SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,"
            " unnest(p.proargnames, p.proargtypes::oid[]) WITH ORDINALITY AS a(name, typ, i)"
            " WHERE n.nspname = 'tidewatch' AND a.typ = 'text'::regtype"
            f" AND a.name IN ({', '.join(repr(s) for s in SQL_ARGS)}) ORDER BY 1")
        self.assertEqual(rows, [], f"functions that take SQL text: {rows}")
        # The check sees arguments at all: a function known to take a regclass is found the same way.
        seen = one(
            "SELECT count(*) FROM pg_proc p, unnest(p.proargnames, p.proargtypes::oid[]) AS a(name, typ)"
            " WHERE p.oid = 'tidewatch._mine_query'::regproc AND a.typ = 'regclass'::regtype AND a.name = 'relation'")
        self.assertEqual(seen, "1")

    def test_no_training_result_is_json(self):
        final = one("SELECT a.aggfinalfn::regproc::text || ':' || p.prorettype::regtype::text"
                     " FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfinalfn"
                     " WHERE a.aggfnoid = 'tidewatch._train_agg'::regproc")
        self.assertEqual(final, "tidewatch._train_final:tidewatch._trained")


if __name__ == "__main__":
    unittest.main()
