//! Alert notifications: the tables tidewatch-service fills when Grafana posts alerts
//! (`tidewatch.notifications`), its delivery outbox and the attempts log (sql/notifications.sql).
//! Nothing runs here: the service receives, enriches and delivers; the extension keeps the catalog.

use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/notifications.sql",
    name = "notifications",
    requires = ["anomaly"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    const INSERT: &str = "INSERT INTO tidewatch.notifications (fingerprint, status, starts_at, alert, subject, message) \
         VALUES ('c6eadffa33fcdf37', 'firing', '0001-01-01T00:00:00Z', '{}', 's', 'm') \
         ON CONFLICT (fingerprint, status, starts_at) DO UPDATE SET repeats = tidewatch.notifications.repeats + 1 \
         RETURNING id";

    #[pg_test]
    fn the_same_alert_is_stored_once_and_its_zero_start_time_is_a_key_like_any_other() {
        let first = Spi::get_one::<i64>(INSERT).unwrap();
        let again = Spi::get_one::<i64>(INSERT).unwrap();
        assert_eq!(first, again);
        assert_eq!(
            Spi::get_one::<i32>("SELECT repeats FROM tidewatch.notifications").unwrap(),
            Some(1)
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT starts_at::text FROM tidewatch.notifications")
                .unwrap()
                .as_deref(),
            Some("0001-01-01 00:00:00+00")
        );
        // Resolved is another row: it must notify too.
        Spi::run(&INSERT.replace("'firing'", "'resolved'")).unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM tidewatch.notifications").unwrap(),
            Some(2)
        );
    }

    #[pg_test(
        error = "new row for relation \"notification_outbox\" violates check constraint \"notification_outbox_kind_check\""
    )]
    fn an_unknown_channel_kind_is_refused() {
        let id = Spi::get_one::<i64>(INSERT).unwrap().unwrap();
        Spi::run(&format!(
            "INSERT INTO tidewatch.notification_outbox (notification_id, route, channel, kind, idempotency_key, max_attempts) \
             VALUES ({id}, 'r', 'c', 'pager', 'k', 3)"
        ))
        .unwrap();
    }

    #[pg_test]
    fn deleting_a_notification_deletes_its_deliveries_and_attempts() {
        let id = Spi::get_one::<i64>(INSERT).unwrap().unwrap();
        Spi::run(&format!(
            "INSERT INTO tidewatch.notification_outbox (notification_id, route, channel, kind, idempotency_key, max_attempts) \
             VALUES ({id}, 'r', 'c', 'webhook', 'k', 3);
             INSERT INTO tidewatch.notification_attempts (outbox_id, attempt, outcome, http_status)
             SELECT id, 1, 'delivered', 200 FROM tidewatch.notification_outbox"
        ))
        .unwrap();
        Spi::run(&format!(
            "DELETE FROM tidewatch.notifications WHERE id = {id}"
        ))
        .unwrap();
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT (SELECT count(*) FROM tidewatch.notification_outbox) + (SELECT count(*) FROM tidewatch.notification_attempts)"
            )
            .unwrap(),
            Some(0)
        );
    }
}
