//! Jobs: add_job, alter_job, delete_job, run_job and the jobs/job_stats views
//! (sql/jobs.sql). The background worker that runs due jobs is in `scheduler.rs`.

use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/jobs.sql",
    name = "jobs",
    requires = ["hypertable"]
);
extension_sql_file!(
    "../../sql/isolation.sql",
    name = "isolation",
    requires = [
        "jobs",
        "anomaly",
        "drift_monitor",
        "logs_catalog",
        "log_monitor_row",
        "log_rules"
    ]
);
extension_sql_file!("../../sql/comments.sql", name = "comments", finalize);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup() -> i32 {
        Spi::run(
            "CREATE TABLE job_log (job_id int, config jsonb);
             CREATE PROCEDURE log_job(job_id int, config jsonb) LANGUAGE sql AS $$ INSERT INTO job_log VALUES (job_id, config) $$;
             CREATE FUNCTION failing_job(job_id int, config jsonb) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'boom %', config ->> 'n' USING ERRCODE = '22012'; END $$;",
        )
        .unwrap();
        Spi::get_one::<i32>("SELECT tidewatch.add_job('log_job', interval '1 hour', '{\"n\": 1}')")
            .unwrap()
            .unwrap()
    }

    #[pg_test]
    fn run_job_calls_the_procedure_with_id_and_config() {
        let id = setup();
        assert!(id >= 1000);
        Spi::run(&format!("CALL tidewatch.run_job({id})")).unwrap();
        assert_eq!(
            Spi::get_one::<i32>("SELECT job_id FROM job_log").unwrap(),
            Some(id)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT (config->>'n')::bigint FROM job_log").unwrap(),
            Some(1)
        );
        let status = Spi::get_one::<String>(&format!(
            "SELECT last_status FROM tidewatch.job_stats WHERE job_id = {id}"
        ))
        .unwrap();
        assert_eq!(status.as_deref(), Some("success"));
    }

    #[pg_test]
    fn failing_job_records_error_and_backs_off_exponentially() {
        setup();
        let id = Spi::get_one::<i32>(
            "SELECT tidewatch.add_job('failing_job', interval '1 hour', '{\"n\": 7}', retry_period => interval '1 minute')",
        )
        .unwrap()
        .unwrap();
        for expected in [1i64, 2, 4] {
            Spi::run(&format!(
                "SELECT tidewatch._execute_job({id}, true, 'public')"
            ))
            .unwrap();
            let delay = Spi::get_one::<f64>(&format!(
                "SELECT extract(epoch FROM j.next_start - s.last_finish)::float8 FROM tidewatch.job j JOIN tidewatch.job_stat s ON s.job_id = j.id WHERE j.id = {id}"
            ))
            .unwrap()
            .unwrap();
            assert!(
                (delay - 60.0 * expected as f64).abs() < 1.0,
                "delay {delay} after {expected} failures"
            );
        }
        let err = Spi::get_two::<String, String>(&format!(
            "SELECT last_error, last_error_sqlstate FROM tidewatch.job_stats WHERE job_id = {id}"
        ))
        .unwrap();
        assert_eq!(err, (Some("boom 7".into()), Some("22012".into())));
        assert_eq!(
            Spi::get_one::<i32>(&format!(
                "SELECT consecutive_failures FROM tidewatch.job_stats WHERE job_id = {id}"
            ))
            .unwrap(),
            Some(3)
        );
    }

    #[pg_test]
    fn max_retries_unschedules_the_job() {
        setup();
        let id = Spi::get_one::<i32>(
            "SELECT tidewatch.add_job('failing_job', interval '1 hour', max_retries => 1)",
        )
        .unwrap()
        .unwrap();
        Spi::run(&format!("SELECT tidewatch._execute_job({id}, true, 'public'); SELECT tidewatch._execute_job({id}, true, 'public')")).unwrap();
        assert_eq!(
            Spi::get_one::<bool>(&format!(
                "SELECT scheduled FROM tidewatch.job WHERE id = {id}"
            ))
            .unwrap(),
            Some(false)
        );
    }

    #[pg_test]
    fn alter_and_delete_job() {
        let id = setup();
        let every = Spi::get_one::<String>(&format!(
            "SELECT schedule_interval::text FROM tidewatch.alter_job({id}, schedule_interval => interval '5 minutes')"
        ))
        .unwrap();
        assert_eq!(every.as_deref(), Some("00:05:00"));
        Spi::run(&format!("SELECT tidewatch.delete_job({id})")).unwrap();
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT count(*) FROM tidewatch.jobs WHERE proc::text LIKE 'log_job%'"
            )
            .unwrap(),
            Some(0)
        );
    }

    #[pg_test(error = "job 424242 not found")]
    fn unknown_job_id_is_an_error() {
        Spi::run("CALL tidewatch.run_job(424242)").unwrap();
    }

    #[pg_test(error = "job 424242 not found")]
    fn alter_unknown_job_is_an_error() {
        Spi::run("SELECT tidewatch.alter_job(424242, scheduled => false)").unwrap();
    }

    #[pg_test(error = "function or procedure public.wrong_sig(integer) cannot be a job")]
    fn wrong_signature_is_an_error() {
        Spi::run("CREATE FUNCTION wrong_sig(int) RETURNS int LANGUAGE sql AS 'SELECT 1'").unwrap();
        Spi::run("SELECT tidewatch.add_job('wrong_sig', interval '1 hour')").unwrap();
    }

    #[pg_test]
    fn every_public_function_has_a_comment() {
        let missing = Spi::get_one::<String>(
            "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
             WHERE p.pronamespace = 'tidewatch'::regnamespace AND p.proname NOT LIKE '\\_%'
               AND obj_description(p.oid, 'pg_proc') IS NULL",
        )
        .unwrap();
        assert_eq!(missing, None);
    }
}
