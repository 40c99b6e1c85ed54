"""A log monitor reads its message column as a variable-length string: a column changed to the
fixed-length type `name` after the monitor was made is refused at the next insert (42804), and
nothing is mined from it garbled (the bug read `name` as a varlena: first byte lost, end cut)."""
import unittest

from pgtest import fresh_database, one, psql, require_cluster


@require_cluster
class LogMonitorColumnType(unittest.TestCase):
    def test_a_message_column_changed_to_a_fixed_length_type_stops_the_monitor(self):
        fresh_database()
        psql("CREATE TABLE changed (ts timestamptz NOT NULL, message text);"
             "SELECT tidewatch.log_monitor('changed', 'changed', 'message', 'ts');"
             "INSERT INTO changed VALUES (now(), 'ERROR connection timeout after 17 ms to host db17');")
        # The ALTER itself is refused (the event trigger tidewatch_alter_table) ...
        refused = one("""DO $$ BEGIN
                 ALTER TABLE changed ALTER COLUMN message TYPE name;
             EXCEPTION WHEN datatype_mismatch THEN
                 PERFORM set_config('tw.refused', SQLSTATE || ' ' || SQLERRM, false);
             END $$; SELECT current_setting('tw.refused', true)""")
        self.assertIsNotNone(refused, "the ALTER to a fixed-length type was not refused")
        self.assertIn("fixed-length type name", refused)
        # ... and with event triggers off (session_replication_role, or a superuser disabling it),
        # the row trigger still refuses each INSERT instead of misreading the column.
        psql("ALTER EVENT TRIGGER tidewatch_alter_table DISABLE;"
             "ALTER TABLE changed ALTER COLUMN message TYPE name;"
             "ALTER EVENT TRIGGER tidewatch_alter_table ENABLE")
        refused = one("""DO $$ BEGIN
                 INSERT INTO changed VALUES (now(), 'ERROR connection timeout after 18 ms to host db18');
             EXCEPTION WHEN datatype_mismatch THEN
                 PERFORM set_config('tw.refused', SQLSTATE || ' ' || SQLERRM, false);
             END $$; SELECT current_setting('tw.refused', true)""")
        self.assertIsNotNone(refused)
        self.assertTrue(refused.startswith("42804 "), refused)
        self.assertIn("fixed-length type name", refused)
        templates = [r[0] for r in psql("SELECT template FROM tidewatch.log_templates WHERE miner = 'changed'")]
        self.assertEqual(len(templates), 1, templates)
        self.assertTrue(templates[0].startswith("ERROR connection timeout after "), templates)
        self.assertEqual(one("SELECT count(*) FROM changed"), "1")

    def test_a_statement_of_null_messages_is_inserted_and_counts_nothing(self):
        # In a session that had not mined yet, it failed with 'log miner "nulls" does not exist'
        # and the rows were refused.
        fresh_database()
        psql("CREATE TABLE nulls (ts timestamptz NOT NULL, message text);"
             "SELECT tidewatch.log_monitor('nulls', 'nulls', 'message', 'ts')")
        psql("INSERT INTO nulls SELECT now(), NULL FROM generate_series(1, 3)")
        self.assertEqual(one("SELECT count(*) FROM nulls"), "3")
        self.assertEqual(one("SELECT count(*) FROM tidewatch.log_counts WHERE monitor = 'nulls'"), "0")
        psql("INSERT INTO nulls VALUES (now(), NULL), (now(), 'ERROR disk full on /var')")
        self.assertEqual(one("SELECT sum(n) FROM tidewatch.log_counts WHERE monitor = 'nulls'"), "1")


if __name__ == "__main__":
    unittest.main()
