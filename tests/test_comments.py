"""Every function, procedure and aggregate the extension defines has a COMMENT: what \\df+ and
tools that read pg_description show (internal ones say what uses them)."""
import unittest

from pgtest import fresh_database, psql, require_cluster


@require_cluster
class Comments(unittest.TestCase):
    def test_every_routine_has_a_comment(self):
        fresh_database()
        missing = psql("SELECT p.oid::regprocedure FROM pg_proc p"
                       " WHERE p.pronamespace = 'tidewatch'::regnamespace"
                       " AND coalesce(obj_description(p.oid, 'pg_proc'), '') = '' ORDER BY 1")
        self.assertEqual(missing, [])
        # And the check itself sees routines: the schema has some, with comments.
        self.assertGreater(int(psql("SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'tidewatch'::regnamespace"
                                    " AND obj_description(p.oid, 'pg_proc') <> ''")[0][0]), 100)


if __name__ == "__main__":
    unittest.main()
