-- COMMENT ON every public function, so that \df+ and \dv+ explain them. One sentence of what,
-- one of how.

COMMENT ON FUNCTION tidewatch.time_bucket(interval, timestamptz) IS
'Start of the time bucket of the given width that holds ts, as TimescaleDB computes it. Buckets are aligned in UTC to Monday 2000-01-03 (months to 2000-01-01).';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, timestamptz, timestamptz) IS
'Start of the time bucket that holds ts, with buckets aligned to origin instead of Monday 2000-01-03. Month widths use only the month of origin.';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, timestamptz, interval) IS
'Start of the time bucket that holds ts, with buckets shifted by offset. Computed as time_bucket(width, ts - offset) + offset.';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, timestamptz, text, timestamptz, interval) IS
'Start of the time bucket that holds ts, on wall-clock time in the given time zone (days start at local midnight across DST). Optional origin and offset as in the other variants.';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, timestamp) IS
'Start of the time bucket of the given width that holds ts, as TimescaleDB computes it. Aligned to 2000-01-03 00:00 (months to 2000-01-01).';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, timestamp, timestamp) IS
'Start of the time bucket that holds ts, with buckets aligned to origin. Month widths use only the month of origin.';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, timestamp, interval) IS
'Start of the time bucket that holds ts, with buckets shifted by offset. Computed as time_bucket(width, ts - offset) + offset.';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, date) IS
'First day of the bucket of whole days or months that holds the date. Aligned to Monday 2000-01-03 (months to 2000-01-01).';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, date, date) IS
'First day of the bucket that holds the date, with buckets aligned to origin. The width must be whole days or months.';
COMMENT ON FUNCTION tidewatch.time_bucket(interval, date, interval) IS
'First day of the bucket that holds the date, with buckets shifted by offset. Computed as time_bucket(width, date - offset) + offset.';

COMMENT ON FUNCTION tidewatch.create_hypertable(regclass, name, interval, boolean, boolean, name, integer, name[]) IS
'Turns a table into a hypertable partitioned by range on time_column into chunks of chunk_time_interval. Works on empty tables, on tables declared PARTITION BY RANGE, and with migrate_data => true on tables with rows; adds a default partition and a maintenance job. With partitioning_column (or partitioning_columns) and number_partitions, the table is first hash-partitioned on the series column(s), so that each series lives in one partition and per-series work runs partition-wise over parallel workers.';
COMMENT ON FUNCTION tidewatch.show_chunks(regclass, timestamptz, timestamptz) IS
'Chunks of a hypertable, oldest first, optionally only those entirely older than older_than or starting at or after newer_than. The default partition is never listed.';
COMMENT ON FUNCTION tidewatch.show_chunks(regclass, interval, interval) IS
'Chunks of a hypertable entirely older than now() - older_than (and starting after now() - newer_than). The default partition is never listed.';
COMMENT ON FUNCTION tidewatch.drop_chunks(regclass, timestamptz, timestamptz) IS
'Drops the chunks show_chunks lists for the same bounds and returns their names. Rows of that range still waiting in the default partition are deleted too; at least one bound is required.';
COMMENT ON FUNCTION tidewatch.drop_chunks(regclass, interval, interval) IS
'Drops the chunks entirely older than now() - older_than and returns their names. Rows of that range still waiting in the default partition are deleted too.';
COMMENT ON FUNCTION tidewatch.run_maintenance(regclass, integer) IS
'Creates chunks for now and chunks_ahead intervals ahead, and moves rows out of the default partition into new chunks (up to max_chunks). Each move is transactional, so every row stays visible; the maintenance job calls this.';
COMMENT ON PROCEDURE tidewatch.policy_maintenance(integer, jsonb) IS
'Job procedure: runs run_maintenance for the hypertable config->>''hypertable_id''. Added by create_hypertable.';
COMMENT ON PROCEDURE tidewatch.policy_retention(integer, jsonb) IS
'Job procedure: drops chunks older than config->>''drop_after'' from the hypertable config->>''hypertable_id''. Added by add_retention_policy.';
COMMENT ON FUNCTION tidewatch.add_retention_policy(regclass, interval, boolean, interval) IS
'Adds a job that drops chunks of the hypertable older than drop_after and returns its job id. Runs every min(chunk interval, 1 day) unless schedule_interval says otherwise.';
COMMENT ON FUNCTION tidewatch.remove_retention_policy(regclass, boolean) IS
'Removes the retention job of a hypertable. Errors if there is none, unless if_exists.';

COMMENT ON FUNCTION tidewatch.add_job(regproc, interval, jsonb, timestamptz, boolean, interval, integer, text, interval) IS
'Schedules a procedure or function (job_id integer, config jsonb) to run every schedule_interval as the calling role, and returns the job id. Failures are recorded and retried after retry_period, doubling up to 5 schedule intervals; max_retries consecutive failures unschedule the job. A run longer than max_runtime (NULL: no limit) is stopped and recorded as failed with SQLSTATE 57014; jobs of a database run side by side, up to tidewatch.max_parallel_jobs.';
COMMENT ON FUNCTION tidewatch.alter_job(integer, interval, jsonb, timestamptz, boolean, interval, integer, boolean, interval) IS
'Changes the schedule, config, next start, retry settings, max_runtime or scheduled flag of a job; NULL keeps a setting. Returns the job as it now is.';
COMMENT ON FUNCTION tidewatch.delete_job(integer, boolean) IS
'Deletes a job and its statistics. Errors on an unknown id, unless if_exists.';
COMMENT ON PROCEDURE tidewatch.run_job(integer) IS
'Runs a job now in this session and records the outcome in tidewatch.job_stats. A failure is reported as a WARNING with the error and does not change the schedule.';

COMMENT ON VIEW tidewatch.hypertables IS 'Hypertables with their time column, chunk interval, number of chunks, covered range, size, row estimate, retention and space partitioning (partitioning_columns, number_partitions).';
COMMENT ON VIEW tidewatch.chunks IS 'Chunks (and default partitions) of every hypertable with their range, size, row estimate and, with space partitioning, the hash partition they belong to.';
COMMENT ON VIEW tidewatch.jobs IS 'Scheduled jobs: procedure, owner, schedule, retry settings, config and next start.';
COMMENT ON VIEW tidewatch.job_stats IS 'Latest run of every job: start, finish, status, duration, error, next start and running totals.';

COMMENT ON FUNCTION tidewatch._partitions(regclass) IS 'Internal: chunks and default partitions of a hypertable (across its hash partitions) with their parsed range and range-partitioned parent.';
COMMENT ON FUNCTION tidewatch._citus_distribution_column(regclass) IS 'Internal: the distribution column of a Citus distributed table, or NULL (also without Citus).';
COMMENT ON FUNCTION tidewatch._range_parents(regclass) IS 'Internal: the range-partitioned tables of a hypertable: itself, or its hash partitions with space partitioning.';
COMMENT ON FUNCTION tidewatch._space_columns(regclass, name, name, integer, name[]) IS 'Internal: checks the space-partitioning arguments of create_hypertable and returns the columns.';
COMMENT ON FUNCTION tidewatch._ensure_range_chunk(regclass, regclass, timestamptz) IS 'Internal: creates the chunk for a timestamp in one range-partitioned table of a hypertable, moving its rows out of that table''s default partition.';
COMMENT ON FUNCTION tidewatch._hypertable(regclass) IS 'Internal: catalog row of a hypertable, or an error.';
COMMENT ON FUNCTION tidewatch._readable(regclass) IS 'Internal: may the current role SELECT from the relation? Keys the row-level security of derived data (sql/isolation.sql).';
COMMENT ON FUNCTION tidewatch._require_select(regclass) IS 'Internal: raise 42501 (permission denied) unless the current role may SELECT from the relation.';
COMMENT ON FUNCTION tidewatch._may_write(text) IS 'Internal: may the current role write the episodes and states of this monitor (its owner, or an inserter into a log monitor''s table)? Keys the write policies of sql/isolation.sql.';
COMMENT ON FUNCTION tidewatch._chunk_name(regclass, timestamptz, interval) IS 'Internal: a free name for a new chunk.';
COMMENT ON FUNCTION tidewatch._ensure_chunk(regclass, timestamptz) IS 'Internal: creates the chunk for a timestamp (in every hash partition), moving its rows out of the default partitions.';
COMMENT ON FUNCTION tidewatch._convert_to_partitioned(regclass, name, interval, name[], integer) IS 'Internal: swaps a plain table for a partitioned one with the same rows, indexes, constraints, grants and comments.';
COMMENT ON FUNCTION tidewatch._on_sql_drop() IS 'Internal: removes catalog rows of dropped hypertables and stops the monitors (anomaly, log, drift) of dropped tables, keeping what they recorded.';
COMMENT ON FUNCTION tidewatch._on_alter_table() IS 'Internal: the event trigger tidewatch_alter_table: renames a column in the monitors (anomaly, log, drift) that read it when the column is renamed, and refuses with 2BP01 to drop a column one of them reads.';
COMMENT ON FUNCTION tidewatch._execute_job(integer, boolean, text) IS 'Internal: runs a job, records its outcome and computes its next start.';
COMMENT ON FUNCTION tidewatch._due_jobs(integer) IS 'Internal: jobs the scheduler should run now, with their max_runtime.';
COMMENT ON FUNCTION tidewatch._log_message_type(regclass, name) IS 'Internal: the type of a log monitor''s message column; refuses fixed-length string types (42804).';
COMMENT ON FUNCTION tidewatch._job_crashed(integer, timestamptz, text, text) IS 'Internal: records a job run whose process died or was stopped at its max_runtime (SQLSTATE 57014).';

COMMENT ON FUNCTION tidewatch.drift(float8[], float8[], text, float8) IS
'Drift between a reference and a current numeric sample with one of Evidently''s stattests (ks, wasserstein, psi, jensenshannon, kl_div, anderson, mannw, t_test, ed, hellinger, chisquare, z, g_test, fisher_exact, TVD, or auto), with scipy''s numbers. NULL elements are skipped; NaN and infinities are dropped; threshold NULL means Evidently''s default for the method.';
COMMENT ON FUNCTION tidewatch.drift(text[], text[], text, float8) IS
'Drift between a reference and a current categorical sample (chisquare, z, fisher_exact, g_test, psi, kl_div, jensenshannon, TVD, hellinger, or auto), categories seen in one window only included. NULL elements are skipped.';
COMMENT ON AGGREGATE tidewatch.drift_agg(float8, boolean) IS
'Drift of a numeric column between rows with is_current false (reference) and true (current), method auto. Returns tidewatch.drift_result; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(float8, boolean, text, float8) IS
'Drift of a numeric column between reference rows (is_current false) and current rows (true) with the given method and threshold (NULL: the method''s default). Returns tidewatch.drift_result; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(text, boolean) IS
'Drift of a categorical column between reference rows (is_current false) and current rows (true), method auto. Returns tidewatch.drift_result; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(text, boolean, text, float8) IS
'Drift of a categorical column between reference and current rows with the given method and threshold. Returns tidewatch.drift_result; parallel-safe.';
COMMENT ON FUNCTION tidewatch.drift_report(regclass, tstzrange, tstzrange, name[], name, jsonb) IS
'One drift test per column between two time windows of a table: every numeric, text and boolean column except the time column unless columns says otherwise. methods maps column names (or "*") to stattest names, and "thresholds" to per-column thresholds.';
COMMENT ON FUNCTION tidewatch.drift_summary(regclass, tstzrange, tstzrange, name[], name, jsonb, float8) IS
'Dataset verdict of drift_report: number of columns, drifted columns, their share, and dataset_drift when the share is at least drift_share (0.5, as Evidently).';

COMMENT ON FUNCTION tidewatch.log_template(text) IS
'The message with its variable parts (numbers, ids, IP addresses, paths, URLs, e-mails, times, durations, sizes, key=value values, quoted strings) replaced by <*>. Lines with the same template differ only in parameters.';
COMMENT ON FUNCTION tidewatch.log_header(text) IS
'Splits a log line into format, timestamp (as written), level, component and message; knows syslog (RFC 3164 and 5424), log4j/logback, Python logging and JSON lines, else format plain.';
COMMENT ON FUNCTION tidewatch.classify_log(text, text) IS
'Error class of a log message (connection, timeout, authentication, resource, data_quality, schema, upstream, configuration, syntax, lock, unknown) with severity, the rule that matched (its position in the built-in ruleset default, its priority in a ruleset of tidewatch.log_rules) and a confidence. Lines no rule matches get the label of the learned classifier named like the ruleset, if one was trained (rule_id NULL, confidence its probability). Rules and classifiers are read once per statement.';

-- Anomaly scoring
COMMENT ON FUNCTION tidewatch.detect_anomalies(regclass, name, name[], name, timestamptz, timestamptz, text, jsonb, boolean) IS
'Scores every row of a table or hypertable per series (labels from series_columns) with a causal detector and returns each point with its expected value, normal band, score in [0,1] and anomaly flag. Runs as one GROUP BY scan with tidewatch.anomaly_agg; time_column defaults to the hypertable''s; anomalies_only => true returns only the flagged points.';
COMMENT ON AGGREGATE tidewatch.anomaly_agg(timestamptz, float8) IS
'Collects a series'' points and scores them in time order; expand the result with tidewatch.anomaly_points(). Parallel safe (combine, serialize, deserialize), so it works over any query or view.';
COMMENT ON AGGREGATE tidewatch.anomaly_agg(timestamptz, float8, text) IS
'Collects a series'' points and scores them in time order; expand the result with tidewatch.anomaly_points(). Parallel safe (combine, serialize, deserialize), so it works over any query or view.';
COMMENT ON AGGREGATE tidewatch.anomaly_agg(timestamptz, float8, text, jsonb) IS
'Collects a series'' points and scores them in time order; expand the result with tidewatch.anomaly_points(). Parallel safe (combine, serialize, deserialize), so it works over any query or view.';
COMMENT ON FUNCTION tidewatch.anomaly_points(bytea, boolean) IS
'Expands the result of tidewatch.anomaly_agg into one row per point: ts, value, expected, lower, upper, score, is_anomaly, kind. Non-finite and NULL inputs are skipped (see anomaly_skipped).';
COMMENT ON FUNCTION tidewatch.anomaly_skipped(bytea) IS
'Number of input rows tidewatch.anomaly_agg skipped: NULL time or value, NaN or ±Infinity. They never enter the detector state.';
COMMENT ON AGGREGATE tidewatch.anomaly_score(timestamptz, float8) IS
'Window form: anomaly_score(ts, value) OVER (PARTITION BY series ORDER BY ts) is the score in [0,1] of each row given only the rows before it. Streaming, bounded state; order-dependent, so it has no combine function.';
COMMENT ON AGGREGATE tidewatch.anomaly_score(timestamptz, float8, text) IS
'Window form: anomaly_score(ts, value) OVER (PARTITION BY series ORDER BY ts) is the score in [0,1] of each row given only the rows before it. Streaming, bounded state; order-dependent, so it has no combine function.';
COMMENT ON AGGREGATE tidewatch.anomaly_score(timestamptz, float8, text, jsonb) IS
'Window form: anomaly_score(ts, value) OVER (PARTITION BY series ORDER BY ts) is the score in [0,1] of each row given only the rows before it. Streaming, bounded state; order-dependent, so it has no combine function.';
COMMENT ON FUNCTION tidewatch.train_detector(text, regclass, name, name[], interval, text, jsonb) IS
'Trains one model per series on the last train_interval of data (ending at the newest row not after now()) and stores them in tidewatch.models under name, replacing earlier ones. Returns the number of per-series models trained.';
COMMENT ON FUNCTION tidewatch.score(text, jsonb, timestamptz, float8) IS
'Anomaly score in [0,1] of value at ts under the trained model name for the series with these labels. The model is not updated; STABLE because it reads tidewatch.models.';
COMMENT ON FUNCTION tidewatch.predict(text, jsonb, timestamptz, float8) IS
'-1 if the trained model name flags value at ts as an outlier for this series, +1 if it is an inlier (as scikit-learn predict does). Errors with a hint when the model or series is unknown.';
COMMENT ON FUNCTION tidewatch.monitor(text, regclass, name, name[], text, jsonb, name, interval, text) IS
'Starts a real-time monitor: every row inserted into relation (INSERT or COPY, any batch size) is scored with its series'' state, and anomalous points open or extend episodes in tidewatch.anomalies. mode sync (default): a statement trigger, episodes visible at commit. mode async: no trigger; the database''s decoder scores committed rows from the write-ahead log (needs wal_level = logical; see tidewatch.monitor_lag); on a Citus distributed table (async only, the distribution column among series_columns) every node''s decoder scores its own shards and the coordinator copies their episodes (tidewatch.pull_episodes). Adds a job that turns silent series into missing_data episodes; returns its id.';
COMMENT ON FUNCTION tidewatch.monitor_lag() IS
'For each async monitor (kind anomaly or log): the commit position its decoder has scored up to, how many bytes of write-ahead log it is behind, when it last got rows and its last error; for a monitor of a Citus distributed table, on the coordinator: when its episodes were last pulled from every worker and the workers'' pull errors.';
COMMENT ON FUNCTION tidewatch.monitor_wait(interval) IS
'Waits until the decoder of async monitors has scored every transaction committed before the call; returns the seconds waited, raises 57014 after timeout. Call it outside a transaction that wrote.';
COMMENT ON FUNCTION tidewatch.unmonitor(text, boolean) IS
'Stops a monitor: drops its trigger, its job and its per-series state (on a Citus coordinator, on every worker too for a distributed table). Recorded episodes are kept.';
COMMENT ON PROCEDURE tidewatch.policy_monitor(integer, jsonb) IS
'Job of a monitor: series silent for longer than config.missing_after (default 5 times their usual spacing, at least 1 minute) become missing_data episodes, which end when data resumes. On a Citus coordinator it also pulls the episodes of a monitor on a distributed table from the workers (tidewatch.pull_episodes).';
COMMENT ON FUNCTION tidewatch._monitor_create(text, regclass, name, name[], text, jsonb, name, interval, text, name[]) IS
'Internal: creates a monitor (tidewatch.monitor, tidewatch.monitor_device); on a Citus coordinator an async monitor on a distributed table is created on every worker too.';
COMMENT ON FUNCTION tidewatch._monitor_episodes(text, pg_snapshot) IS
'Internal (a Citus worker''s side of tidewatch.pull_episodes): the episodes of a monitor written by transactions the given snapshot did not see, the current snapshot and whether the monitor exists here, as JSON.';
COMMENT ON FUNCTION tidewatch.pull_episodes(text) IS
'On a Citus coordinator: copies into tidewatch.anomalies the episodes that the workers'' decoders recorded or changed since the last pull, for one async monitor on a distributed table or (NULL) all the caller owns; returns how many were inserted or updated. Copies carry detail.node = {group, id}. A worker without the monitor (added later) gets it. The monitor''s job calls it every check_interval; returns 0 elsewhere.';
COMMENT ON FUNCTION tidewatch.record_event(text, text, timestamptz, text, jsonb, jsonb, regclass, timestamptz) IS
'Records an event (source drift, log_template, log_burst or user) in tidewatch.events, so that explain_anomaly cites it when it overlaps an episode. Returns the event id.';
COMMENT ON FUNCTION tidewatch.explain_anomaly(bigint, interval) IS
'Ranked reasons for an anomaly episode, each with jsonb evidence: the detector and its band and sigmas, the kind, what the series usually does at that hour, episodes of series sharing labels within the window, and overlapping drift and log events.';
COMMENT ON FUNCTION tidewatch.peer_outliers(regclass, name, name[], interval, timestamptz, timestamptz, text, float8) IS
'Which series behave unlike their siblings: averages every series per bucket between start and finish, then flags, bucket by bucket, the series that augurs-outlier''s MAD or DBSCAN detector finds outlying. Higher sensitivity flags more.';
COMMENT ON FUNCTION tidewatch.save_reference(text, regclass, tstzrange, name[]) IS
'Saves a drift reference profile per column of a hypertable window in tidewatch.references (replacing one of the same name): exact values up to 100,000 (or 10,000 distinct), beyond that a quantile sketch whose KS error is at most 1e-4. Returns the number of columns saved.';
COMMENT ON FUNCTION tidewatch.drift_report(regclass, text, tstzrange, name[], name, jsonb) IS
'drift_report against a reference saved with save_reference: one row per saved column, comparing the current window with the profile. Exact profiles give the same numbers as the range form; sketched ones stay within the documented error.';

COMMENT ON FUNCTION tidewatch.monitor_drift(text, regclass, text, interval, interval, name[], name, jsonb, float8) IS
'Starts a drift monitor: a job that every schedule compares the last window of relation with a saved reference (by name) and appends one row per column to tidewatch.drift_results; a dataset drift (share of drifted columns >= drift_share) becomes a drift event that explain_anomaly cites. Returns the job id.';
COMMENT ON FUNCTION tidewatch.monitor_drift(text, regclass, tstzrange, interval, interval, name[], name, jsonb, float8) IS
'Starts a drift monitor against a fixed reference time range (say, the training period): a job that every schedule compares the last window of relation with it and appends one row per column to tidewatch.drift_results. Returns the job id.';
COMMENT ON FUNCTION tidewatch.unmonitor_drift(text, boolean) IS
'Stops a drift monitor: deletes it and its job. Its rows in tidewatch.drift_results and its events are kept.';
COMMENT ON FUNCTION tidewatch.run_drift_monitor(text) IS
'Runs a drift monitor now over [now() - window, now()): appends its rows to tidewatch.drift_results (one row per column, or one row with the error when the window cannot be compared) and returns them; records a drift event when the dataset drifted.';
COMMENT ON PROCEDURE tidewatch.policy_drift(integer, jsonb) IS
'Job of a drift monitor (config.monitor): calls tidewatch.run_drift_monitor.';

COMMENT ON AGGREGATE tidewatch.drift_agg(float8, boolean, text[]) IS
'Several drift tests of a numeric column at once (reference rows: is_current false; current: true), each with its default threshold; the values are collected and sorted once for all of them. Returns tidewatch.drift_result[] in the order of methods; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(text, boolean, text[]) IS
'Several drift tests of a categorical column at once, each with its default threshold. Returns tidewatch.drift_result[] in the order of methods; parallel-safe.';
COMMENT ON FUNCTION tidewatch.log_parse(text, text) IS
'Template of a log line by a stateful miner (tidewatch.log_templates): template id, template with <*> for parameters, the parameters, and whether the line opened a new template. Writers of one miner take its lock until commit, so concurrent sessions never create duplicate templates; a NULL line gives no row.';
COMMENT ON FUNCTION tidewatch.mine_logs(regclass, name, name, text) IS
'Mines every line of a table into a miner (created if missing) in one pass, with NOTICE progress, and returns per template of this run its id, template, number of lines, first and last time seen (time_column, else the hypertable''s, else now()) and whether it is new.';
COMMENT ON FUNCTION tidewatch.create_log_miner(text, jsonb, boolean) IS
'Creates an empty log template miner. config may set sim_threshold, max_clusters (the cap on live templates; the least recently used is evicted), depth, max_children and max_line_len; the defaults are the one configuration used for every Loghub system.';
COMMENT ON FUNCTION tidewatch.drop_log_miner(text, boolean) IS
'Drops a log miner and its templates. Refused while a log monitor uses it.';
COMMENT ON FUNCTION tidewatch.train_log_classifier(text, regclass, name, name) IS
'Trains a naive Bayes classifier over template tokens from labelled rows (message, label) and stores it in tidewatch.log_classifiers; classify_log(message, ruleset) uses the classifier named like the ruleset for lines that no rule matches. Returns the number of examples.';
COMMENT ON FUNCTION tidewatch.log_monitor(text, regclass, name, name, text, text, name, name, interval, integer, text) IS
'Starts a real-time log monitor: each line inserted (INSERT or COPY) gets its template and error class, counted per minute in tidewatch.log_counts; new templates become events, and a burst of an error class (Poisson test against its last 24 hours) becomes a log_burst episode in tidewatch.anomalies. mode sync (default): row triggers, which also store the template and class in template_column/category_column (default: columns named template_id and category, if present). mode async: no trigger; the database''s decoder classifies committed lines from the write-ahead log (needs wal_level = logical) and leaves the rows as inserted. Returns the miner used.';
COMMENT ON FUNCTION tidewatch.unmonitor_logs(text, boolean) IS
'Stops a log monitor: drops its triggers and state. Its counts, templates, events and episodes are kept.';
COMMENT ON FUNCTION tidewatch._wal_insert_end_bytes() IS
'Internal: the end of the write-ahead log inserted so far, in bytes from 0/0 (the insert position, or the page boundary before a fresh page header).';
COMMENT ON FUNCTION tidewatch._wal_insert_end() IS
'Internal: the end of the write-ahead log inserted so far as a pg_lsn: what the decoder of async monitors flushes and reads up to, and what monitor_wait() waits for.';
COMMENT ON FUNCTION tidewatch._partitionwise(regclass) IS 'Internal: for a hypertable with space partitioning, turns on partition-wise aggregation and, when the parallel workers already take every CPU, keeps the leader from taking partitions; returns the settings to put back (tidewatch._partitionwise_end).';
COMMENT ON FUNCTION tidewatch._partitionwise_end(text[]) IS 'Internal: puts back the settings tidewatch._partitionwise changed.';
COMMENT ON FUNCTION tidewatch._cpu_count() IS 'Internal: the number of CPUs this server may use (affinity and cgroup quotas counted); tidewatch._partitionwise reads it.';
COMMENT ON FUNCTION tidewatch._train_rows(regclass, name, name[], name, text, jsonb, timestamptz, timestamptz) IS
'Internal: the trained state of every series of a window, as train_detector stores it (a function of its own so that the scan may use parallel workers).';
COMMENT ON FUNCTION tidewatch._refuse_citus_table(regclass, text) IS 'Internal: refuses a monitor on a Citus table where it cannot work (a sync monitor on any, an async one on a table not hash-distributed), saying why.';
COMMENT ON FUNCTION tidewatch._citus_coordinator() IS 'Internal: whether this server is a Citus coordinator (false without Citus).';
COMMENT ON FUNCTION tidewatch._citus_propagate(text, text, boolean) IS 'Internal: creates (create) or drops (drop) a monitor''s copy on every Citus worker; raises an error naming the failed workers when strict.';
COMMENT ON FUNCTION tidewatch._monitor_replica_sql(text) IS 'Internal: the command that creates a monitor''s copy on a Citus worker, as its owner, with the same arguments.';
COMMENT ON FUNCTION tidewatch.detect_device_anomalies(regclass, name[], name[], name, timestamptz, timestamptz, jsonb, boolean) IS
'Scores devices: the value_columns of each series (labels from series_columns) judged together, row by row in time order, with auto''s device mode (a row is surprising when its most surprised sensor is rare for the device, or several sensors are mildly surprised at once). Returns each row''s score in [0,1], flag, kind, the sensor that moved most and each surprised sensor''s share of the surprise; anomalies_only => true returns only the flagged rows.';
COMMENT ON FUNCTION tidewatch.device_points(bytea, text[], boolean) IS
'Expands the result of tidewatch._device_agg into one row per scored row of the device: ts, score, is_anomaly, kind, top_sensor and contributions (each surprised sensor''s share, named by sensors or sensor_1, sensor_2, ...).';
COMMENT ON FUNCTION tidewatch.train_device_detector(text, regclass, name[], name[], interval, jsonb) IS
'Trains one device model per series (the value_columns judged together, auto''s device mode) on the last train_interval of data (ending at the newest row not after now()) and stores them in tidewatch.models under name with method device, replacing earlier ones. Returns the number of devices trained.';
COMMENT ON FUNCTION tidewatch.score(text, jsonb, timestamptz, float8[]) IS
'Anomaly score in [0,1] of a row of sensor values (in the order of the value_columns it was trained on; NULL = missing) at ts under the trained device model name for the device with these labels. The model is not updated.';
COMMENT ON FUNCTION tidewatch.predict(text, jsonb, timestamptz, float8[]) IS
'-1 if the trained device model name flags this row of sensor values for the device with these labels, else 1 (scikit-learn''s convention). The model is not updated.';
COMMENT ON FUNCTION tidewatch._device_columns(regclass, name[], name[]) IS
'Internal: checks the value columns of a device (1 to 4096 numeric columns, none NULL) and returns the label expression of its series columns.';
COMMENT ON FUNCTION tidewatch.monitor_device(text, regclass, name[], name[], jsonb, name, interval, text) IS
'Starts a real-time monitor of devices: every row inserted into relation is scored with its device''s state, the value_columns judged together by auto''s device mode, and anomalous rows open or extend episodes in tidewatch.anomalies whose detail names the sensor that moved most (top_sensor) and each sensor''s share (contributions); band, value and sigma are the top sensor''s. mode sync (a statement trigger) or async (the decoder, from the write-ahead log), as tidewatch.monitor. Stop it with tidewatch.unmonitor. Returns the id of its missing-data job.';

-- Internal functions and aggregates: aggregate support functions, triggers and helpers.
COMMENT ON FUNCTION tidewatch._anomaly_agg_combine(internal,internal) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch._anomaly_agg_flagged, tidewatch._train_agg, tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_deserialize(bytea,internal) IS
'Internal: the deserialize function (a state back from its bytes) of tidewatch._anomaly_agg_flagged, tidewatch._train_agg, tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_serialize(internal) IS
'Internal: the serialize function (the state as bytes, between parallel workers or Citus nodes) of tidewatch._anomaly_agg_flagged, tidewatch._train_agg, tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_step(internal,timestamp with time zone,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_step(internal,timestamp with time zone,double precision,text) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_step(internal,timestamp with time zone,double precision,text,jsonb) IS
'Internal: the transition function (adds one row to the state) of tidewatch._anomaly_agg_flagged, tidewatch._train_agg, tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_check(text,jsonb) IS
'Internal: checks an anomaly method and its params (22023 with the valid ones) before a scan; true when valid.';
COMMENT ON FUNCTION tidewatch._anomaly_flagged_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._anomaly_agg_flagged.';
COMMENT ON FUNCTION tidewatch._anomaly_stream_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch.anomaly_score.';
COMMENT ON FUNCTION tidewatch._anomaly_stream_step(internal,timestamp with time zone,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_score.';
COMMENT ON FUNCTION tidewatch._anomaly_stream_step(internal,timestamp with time zone,double precision,text) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_score.';
COMMENT ON FUNCTION tidewatch._anomaly_stream_step(internal,timestamp with time zone,double precision,text,jsonb) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_score.';
COMMENT ON FUNCTION tidewatch._check_columns(regclass,name[]) IS
'Internal: raises 42703 naming every column of columns that relation does not have (drift functions).';
COMMENT ON FUNCTION tidewatch._classification_quality_combine(bytea,bytea) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch.classification_quality.';
COMMENT ON FUNCTION tidewatch._classification_quality_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch.classification_quality.';
COMMENT ON FUNCTION tidewatch._classification_quality_step(bytea,text,text) IS
'Internal: the transition function (adds one row to the state) of tidewatch.classification_quality.';
COMMENT ON FUNCTION tidewatch._column_type(regclass,name,text,text) IS
'Internal: checks that a column of relation exists and has a type in the given categories; returns its type (log functions).';
COMMENT ON FUNCTION tidewatch._device_agg_combine(internal,internal) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch._device_agg, tidewatch._device_agg_flagged, tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_agg_deserialize(bytea,internal) IS
'Internal: the deserialize function (a state back from its bytes) of tidewatch._device_agg, tidewatch._device_agg_flagged, tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_agg_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._device_agg.';
COMMENT ON FUNCTION tidewatch._device_agg_flagged_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._device_agg_flagged.';
COMMENT ON FUNCTION tidewatch._device_agg_serialize(internal) IS
'Internal: the serialize function (the state as bytes, between parallel workers or Citus nodes) of tidewatch._device_agg, tidewatch._device_agg_flagged, tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_agg_step(internal,timestamp with time zone,double precision[],text) IS
'Internal: the transition function (adds one row to the state) of tidewatch._device_agg, tidewatch._device_agg_flagged, tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_monitor_step(bytea,jsonb,text[],timestamp with time zone[],double precision[]) IS
'Internal: advances a device monitor''s per-series state by a batch of rows (one value per sensor per row, row-major) and returns the new state, counts and the episodes it opened, extended or closed, with the sensors'' shares (monitor_device).';
COMMENT ON FUNCTION tidewatch._device_train_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_verdict(bytea,timestamp with time zone,double precision[]) IS
'Internal: the verdict (score, flag, band, top sensor) of a stored device model on one row of sensor values, without changing the model (score, predict).';
COMMENT ON AGGREGATE tidewatch._drift_agg(text,boolean,text[],double precision[]) IS
'Internal: drift_agg of a categorical column with per-method thresholds (drift_report, drift monitors).';
COMMENT ON AGGREGATE tidewatch._drift_agg(double precision,boolean,text[],double precision[]) IS
'Internal: drift_agg of a numeric column with per-method thresholds (drift_report, drift monitors).';
COMMENT ON FUNCTION tidewatch._drift_cat_combine(bytea,bytea) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch._drift_agg, tidewatch._profile_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_final_all(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch._drift_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_profile(bytea,text[],text,double precision) IS
'Internal: drift of a current window (an array) against a saved categorical profile (drift monitors with a saved reference).';
COMMENT ON FUNCTION tidewatch._drift_cat_step(bytea,text,boolean) IS
'Internal: the transition function (adds one row to the state) of tidewatch._profile_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_step(bytea,text,boolean,text[]) IS
'Internal: the transition function (adds one row to the state) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_step(bytea,text,boolean,text,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_step(bytea,text,boolean,text[],double precision[]) IS
'Internal: the transition function (adds one row to the state) of tidewatch._drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_methods(jsonb,name) IS
'Internal: the methods and thresholds drift_report applies to a column, from its options (checked before the scan, so that a typo fails first).';
COMMENT ON FUNCTION tidewatch._drift_num_combine(bytea,bytea) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch._drift_agg, tidewatch._profile_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_final_all(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch._drift_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_profile(bytea,double precision[],text,double precision) IS
'Internal: drift of a current window (an array) against a saved numeric profile (drift monitors with a saved reference).';
COMMENT ON FUNCTION tidewatch._drift_num_step(bytea,double precision,boolean) IS
'Internal: the transition function (adds one row to the state) of tidewatch._profile_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_step(bytea,double precision,boolean,text[]) IS
'Internal: the transition function (adds one row to the state) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_step(bytea,double precision,boolean,text,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_step(bytea,double precision,boolean,text[],double precision[]) IS
'Internal: the transition function (adds one row to the state) of tidewatch._drift_agg.';
COMMENT ON FUNCTION tidewatch._in_range(name,tstzrange,integer,integer) IS
'Internal: the predicate "column in range" written with comparisons on bound parameters, so that the planner prunes chunks outside it (drift functions).';
COMMENT ON FUNCTION tidewatch._log_burst_check(text,text,timestamp with time zone) IS
'Internal: checks a log monitor''s error class for a burst (Poisson tail against its usual rate) and opens, extends or ends its log_burst episode and event.';
COMMENT ON FUNCTION tidewatch._log_miner_config_check(jsonb) IS
'Internal: checks a log miner''s settings (the CHECK constraint of tidewatch.log_miners.config).';
COMMENT ON FUNCTION tidewatch._log_monitor_apply_async(text,timestamp with time zone[],text[]) IS
'Internal: the decoder of async monitors applies a batch of committed log lines to a log monitor with it; an error is kept in log_monitors.last_error and reported as a WARNING.';
COMMENT ON FUNCTION tidewatch._log_monitor_flush(text) IS
'Internal: the statement side of a log monitor: writes the pending counts, the miner''s changes and new templates'' events; returns per error class the time of its newest line.';
COMMENT ON FUNCTION tidewatch._log_monitor_ingest(text,timestamp with time zone[],text[]) IS
'Internal: mines, classifies and counts a batch of log lines of a log monitor as its row trigger does (the async side); returns the lines counted.';
COMMENT ON FUNCTION tidewatch._log_monitor_row() IS
'Internal: the row trigger of a sync log monitor: mines, classifies and counts each inserted line (its once-per-statement catalog reads run as the extension''s owner, so a role that may only INSERT into the log table is served; it refuses with 42501 to fire on any table but its monitor''s).';
COMMENT ON FUNCTION tidewatch._log_monitor_statement() IS
'Internal: the statement trigger of a sync log monitor: flushes what the row trigger counted and checks for error bursts, as the extension''s owner (SECURITY DEFINER; it refuses with 42501 to fire on any table but its monitor''s).';
COMMENT ON FUNCTION tidewatch._log_rule_check(text,text,text) IS
'Internal: checks one row of tidewatch.log_rules (its CHECK constraint): the pattern compiles, the category and severity exist.';
COMMENT ON FUNCTION tidewatch._mine_query(regclass,text,text,text,bigint) IS
'Internal: the body of mine_logs: mines every row of relation into the miner, with NOTICE progress, and returns per template its lines and times.';
COMMENT ON FUNCTION tidewatch._model_score(bytea,timestamp with time zone,double precision) IS
'Internal: the score in [0,1] of a stored per-series model on one point, without changing the model (score).';
COMMENT ON FUNCTION tidewatch._model_state(text,jsonb) IS
'Internal: the state of the trained model name for the series with these labels (42704 with a hint when there is none).';
COMMENT ON FUNCTION tidewatch._model_verdict(bytea,timestamp with time zone,double precision) IS
'Internal: the verdict (score, flag, band, kind) of a stored per-series model on one point, as jsonb, without changing the model (predict).';
COMMENT ON FUNCTION tidewatch._monitor_apply(tidewatch.monitors,jsonb,timestamp with time zone[],double precision[]) IS
'Internal: applies one batch of a series'' points (or a device''s rows) to a monitor: advances its state under a row lock and opens, extends or closes its episodes in the same transaction.';
COMMENT ON FUNCTION tidewatch._monitor_apply_async(text,jsonb,timestamp with time zone[],double precision[]) IS
'Internal: the decoder of async monitors applies each series'' batch with it; an error is kept in monitors.last_error and reported as a WARNING instead of stopping the decoder.';
COMMENT ON FUNCTION tidewatch._monitor_drift(text,regclass,text,tstzrange,interval,interval,name[],name,jsonb,double precision) IS
'Internal: the body of both forms of monitor_drift (a saved reference or a fixed window): checks the arguments, stores the drift monitor and adds its job.';
COMMENT ON FUNCTION tidewatch._monitor_slot() IS
'Internal: checks the settings async monitors need (55000 with a hint), creates this database''s replication slot when missing, and returns the position and system identifier a new monitor starts from.';
COMMENT ON FUNCTION tidewatch._require_async() IS
'Internal: raises 42501 with a hint unless the current role may start an async monitor (a superuser, or a role granted EXECUTE on tidewatch._monitor_slot()).';
COMMENT ON FUNCTION tidewatch._monitor_slot_name() IS
'Internal: the name of this database''s replication slot of async monitors (tidewatch_<database oid>).';
COMMENT ON FUNCTION tidewatch._monitor_step(bytea,text,jsonb,timestamp with time zone[],double precision[]) IS
'Internal: advances a monitor''s per-series state by a batch of points and returns the new state, counts and the episodes it opened, extended or closed (times in microseconds since the Unix epoch).';
COMMENT ON FUNCTION tidewatch._monitor_trigger() IS
'Internal: the statement trigger of a sync monitor: groups the inserted rows by series (a device''s value columns together) and applies each batch; episodes are visible at commit.';
COMMENT ON FUNCTION tidewatch._require_owner(text,text,regrole) IS
'Internal: raise 42501 unless the current role is a member of owner (dropping or replacing another role''s monitor or reference).';
COMMENT ON FUNCTION tidewatch._ruleset_writable(text) IS
'Internal: whether the current role may add rules to a custom log ruleset (no rule of it belongs to a role it is not a member of).';
COMMENT ON FUNCTION tidewatch._monitor_name_free() IS
'Internal: trigger of tidewatch.monitors and tidewatch.log_monitors: 42710 when the other kind already has a monitor of that name (they share one name space).';
COMMENT ON FUNCTION tidewatch._new_name(text,text,boolean,text) IS
'Internal: the shared check of create functions of named objects: 22023 for an empty name, 42710 when it exists (with the function that drops it).';
COMMENT ON FUNCTION tidewatch._not_found(text,text,boolean,text) IS
'Internal: the shared answer of drop functions for a missing object: false when if_exists, else 42704 saying where to list them.';
COMMENT ON FUNCTION tidewatch._peer_outliers(integer,integer,double precision[],text,double precision) IS
'Internal: peer outliers over a series x bucket grid (row-major values, NULL = missing bucket) with augurs-outlier''s MAD or DBSCAN detector (peer_outliers).';
COMMENT ON FUNCTION tidewatch._pg_us(bigint) IS
'Internal: microseconds since 2000-01-01 (PostgreSQL''s epoch, as the Rust side reports times) to timestamptz.';
COMMENT ON FUNCTION tidewatch._poisson_burst(bigint,double precision) IS
'Internal: the upper tail P(X >= k) of a Poisson law at mu, and the largest count still normal at the 1e-4 level (log error bursts).';
COMMENT ON AGGREGATE tidewatch._profile_agg(text,boolean) IS
'Internal: the reference profile of a categorical column (its exact counts) that save_reference stores; parallel safe.';
COMMENT ON AGGREGATE tidewatch._profile_agg(double precision,boolean) IS
'Internal: the reference profile of a numeric column (exact values, or a sketch with documented error when large) that save_reference stores; parallel safe.';
COMMENT ON FUNCTION tidewatch._profile_cat_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch._profile_agg.';
COMMENT ON FUNCTION tidewatch._profile_is_exact(bytea) IS
'Internal: whether a saved profile holds the exact values (else a sketch with documented error).';
COMMENT ON FUNCTION tidewatch._profile_num_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch._profile_agg.';
COMMENT ON FUNCTION tidewatch._regression_quality_combine(bytea,bytea) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch.regression_quality.';
COMMENT ON FUNCTION tidewatch._regression_quality_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch.regression_quality.';
COMMENT ON FUNCTION tidewatch._regression_quality_step(bytea,double precision,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.regression_quality.';
COMMENT ON FUNCTION tidewatch._series_columns(regclass,name,name[]) IS
'Internal: checks a value column (numeric) and series columns of relation and returns the expression of the series labels as jsonb.';
COMMENT ON FUNCTION tidewatch._time_column(regclass,name) IS
'Internal: the time column to use: the given one (checked) or the hypertable''s; 22023 with a hint for a plain table without one.';
COMMENT ON AGGREGATE tidewatch._train_agg(timestamp with time zone,double precision,text,jsonb) IS
'Internal: trains a per-series detector on the rows of one series (train_detector); parallel safe, with combine, serialize and deserialize functions.';
COMMENT ON FUNCTION tidewatch._train_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._train_agg.';
COMMENT ON FUNCTION tidewatch._train_log_classifier(text,regclass,text,text) IS
'Internal: trains the learned fallback classifier from the (message, label) rows of relation where both are not NULL; returns the number of examples (train_log_classifier).';
COMMENT ON FUNCTION tidewatch._us(jsonb) IS
'Internal: microseconds since the Unix epoch (as the Rust side reports times) to timestamptz, exactly.';
COMMENT ON FUNCTION tidewatch._wal_system() IS
'Internal: this cluster''s system identifier (pg_control_system() is not for every role).';
