//! Retention: deletes old rows of one table on a cron schedule in the configured time zone.
//!
//! | target | column | default keep | default schedule |
//! |---|---|---|---|
//! | [`Target::Logs`] (`logs`) | `ts` | 7 days | `0 3 * * *` (daily 03:00) |
//! | [`Target::Metrics`] (`metrics`) | `ts` | 1 day | `0 */6 * * *` (every 6 hours) |
//! | [`Target::Events`] (`server_events`) | `created_at` | 30 days | `0 4 * * 0` (Sunday 04:00) |
//!
//! Rows go in small batches (`DELETE ... WHERE id IN (SELECT id ... WHERE ts < cutoff LIMIT n)`,
//! one short statement each, with a pause between) straight on the pool, so the single writer is
//! never locked out for long; each run is recorded as a `retention` history event with the table,
//! rows removed, statements, cutoff and duration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use tokio_util::sync::CancellationToken;

use super::Clock;
use crate::db::entities::{logs, metrics, server_events};
use crate::hub::{EventData, Hub, HubPayload};

/// The table a retention job prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `logs`, by `ts`.
    Logs,
    /// `metrics`, by `ts`.
    Metrics,
    /// `server_events` (the history), by `created_at`.
    Events,
}

impl Target {
    /// The table name (the `table` attribute of the `retention` event).
    pub fn table(self) -> &'static str {
        match self {
            Target::Logs => "logs",
            Target::Metrics => "metrics",
            Target::Events => "server_events",
        }
    }

    /// "log", "metrics", "event": for messages and log lines.
    fn label(self) -> &'static str {
        match self {
            Target::Logs => "log",
            Target::Metrics => "metrics",
            Target::Events => "event",
        }
    }

    /// What one row is called in the event's message.
    fn rows(self) -> &'static str {
        match self {
            Target::Logs => "entries",
            Target::Metrics => "samples",
            Target::Events => "events",
        }
    }
}

/// How the job deletes.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// Rows older than this are deleted.
    pub keep: chrono::Duration,
    /// Rows per DELETE statement.
    pub batch_rows: u64,
    /// Pause between statements, so other writers get the database.
    pub pause: Duration,
}

impl RetentionOptions {
    /// Keep `days` days, 5,000 rows per statement, 20 ms between statements.
    pub fn days(days: u32) -> Self {
        Self {
            keep: chrono::Duration::days(i64::from(days)),
            batch_rows: 5000,
            pause: Duration::from_millis(20),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// Rows older than this were deleted.
    pub cutoff: DateTime<Utc>,
    /// How many.
    pub rows_removed: u64,
    /// DELETE statements run.
    pub statements: u64,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// Parses a cron expression (5 fields, or 6 with seconds first).
pub fn parse_schedule(expr: &str) -> Result<Cron, String> {
    croner::parser::CronParser::new()
        .parse(expr)
        .map_err(|e| e.to_string())
}

/// Parses an IANA time zone name ("UTC", "Europe/Berlin").
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|e| e.to_string())
}

/// The first run of `schedule` in `tz` strictly after `now`.
pub fn next_run(schedule: &Cron, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Deletes every log row written before `now - keep`; see [`run_once_for`].
pub async fn run_once(
    db: &DatabaseConnection,
    hub: Option<&Hub>,
    now: DateTime<Utc>,
    opts: &RetentionOptions,
) -> Result<RetentionReport, DbErr> {
    run_once_for(db, hub, now, Target::Logs, opts).await
}

/// Deletes up to `batch` rows of `target` older than `cutoff`; returns how many went.
///
/// `DELETE ... WHERE id IN (SELECT id ... WHERE ts < cutoff LIMIT n)`: portable to SQLite and
/// PostgreSQL, and each statement is short (the inner select walks the time index).
async fn delete_batch(
    db: &DatabaseConnection,
    target: Target,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let res = match target {
        Target::Logs => {
            logs::Entity::delete_many()
                .filter(
                    logs::Column::Id.in_subquery(
                        Query::select()
                            .column(logs::Column::Id)
                            .from(logs::Entity)
                            .and_where(logs::Column::Ts.lt(cutoff))
                            .limit(batch)
                            .to_owned(),
                    ),
                )
                .exec(db)
                .await?
        }
        Target::Metrics => {
            metrics::Entity::delete_many()
                .filter(
                    metrics::Column::Id.in_subquery(
                        Query::select()
                            .column(metrics::Column::Id)
                            .from(metrics::Entity)
                            .and_where(metrics::Column::Ts.lt(cutoff))
                            .limit(batch)
                            .to_owned(),
                    ),
                )
                .exec(db)
                .await?
        }
        Target::Events => {
            server_events::Entity::delete_many()
                .filter(
                    server_events::Column::Id.in_subquery(
                        Query::select()
                            .column(server_events::Column::Id)
                            .from(server_events::Entity)
                            .and_where(server_events::Column::CreatedAt.lt(cutoff))
                            .limit(batch)
                            .to_owned(),
                    ),
                )
                .exec(db)
                .await?
        }
    };
    Ok(res.rows_affected)
}

/// Deletes every row of `target` older than `now - keep`, in batches, and records the run as a
/// `retention` event (published on `hub` when given). `now` is a parameter so tests can fix it.
pub async fn run_once_for(
    db: &DatabaseConnection,
    hub: Option<&Hub>,
    now: DateTime<Utc>,
    target: Target,
    opts: &RetentionOptions,
) -> Result<RetentionReport, DbErr> {
    let started = Instant::now();
    let cutoff = now - opts.keep;
    let batch = opts.batch_rows.max(1);
    let mut rows_removed = 0u64;
    let mut statements = 0u64;
    loop {
        let removed = delete_batch(db, target, cutoff, batch).await?;
        statements += 1;
        rows_removed += removed;
        if removed < batch {
            break;
        }
        if !opts.pause.is_zero() {
            tokio::time::sleep(opts.pause).await;
        }
    }
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let attrs = BTreeMap::from([
        ("table".to_owned(), target.table().to_owned()),
        ("rows_removed".to_owned(), rows_removed.to_string()),
        ("duration_ms".to_owned(), duration_ms.to_string()),
        ("cutoff".to_owned(), cutoff.to_rfc3339()),
        ("statements".to_owned(), statements.to_string()),
    ]);
    let message = format!(
        "{} retention removed {rows_removed} {} older than {}",
        target.label(),
        target.rows(),
        cutoff.to_rfc3339()
    );
    let row = server_events::ActiveModel {
        server_id: Set(None),
        node_id: Set(None),
        event_type: Set("retention".into()),
        message: Set(message.clone()),
        attributes: Set(serde_json::to_string(&attrs).unwrap_or_else(|_| "{}".into())),
        actor: Set("controller".into()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    if let Some(hub) = hub {
        hub.publish(
            0,
            0,
            now,
            HubPayload::Event(EventData {
                id: row.id,
                event_type: "retention".into(),
                message,
                attributes: attrs,
                actor: "controller".into(),
            }),
        );
    }
    Ok(RetentionReport {
        cutoff,
        rows_removed,
        statements,
        duration_ms,
    })
}

/// One scheduled retention job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The table.
    pub target: Target,
    /// When it runs.
    pub schedule: Cron,
    /// The time zone of `schedule`.
    pub tz: Tz,
    /// What it keeps and how it deletes.
    pub opts: RetentionOptions,
}

/// Runs [`run_once_for`] at every occurrence of the job's schedule until `shutdown`.
///
/// Sleeps at most a minute at a time and re-reads the clock, so a clock change or a suspended host
/// does not skip or delay a run by much.
pub async fn run(
    db: DatabaseConnection,
    hub: Hub,
    job: Job,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let Job {
        target,
        schedule,
        tz,
        opts,
    } = job;
    let label = target.label();
    loop {
        let Some(due) = next_run(&schedule, tz, clock.now()) else {
            tracing::warn!(
                job = label,
                "retention schedule has no next run; retention stopped"
            );
            return;
        };
        tracing::debug!(job = label, next = %due.to_rfc3339(), "retention scheduled");
        loop {
            let left = (due - clock.now()).to_std().unwrap_or(Duration::ZERO);
            if left.is_zero() {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(left.min(Duration::from_secs(60))) => {}
            }
        }
        let run = run_once_for(&db, Some(&hub), clock.now(), target, &opts);
        let res = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = run => r,
        };
        match res {
            Ok(r) => tracing::info!(
                job = label,
                rows_removed = r.rows_removed,
                duration_ms = r.duration_ms,
                "retention done"
            ),
            Err(e) => tracing::error!(
                job = label,
                error = %e,
                "retention failed; retrying at the next run"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_default_schedule_runs_daily_at_three_in_the_zone() {
        let cron = parse_schedule("0 3 * * *").expect("cron");
        let now = Utc
            .with_ymd_and_hms(2026, 12, 3, 10, 0, 0)
            .single()
            .expect("time");
        let utc = next_run(&cron, parse_time_zone("UTC").expect("tz"), now).expect("next");
        assert_eq!(
            utc,
            Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0)
                .single()
                .expect("t")
        );
        // 03:00 in Berlin in winter is 02:00 UTC.
        let berlin = parse_time_zone("Europe/Berlin").expect("tz");
        let b = next_run(&cron, berlin, now).expect("next");
        assert_eq!(
            b,
            Utc.with_ymd_and_hms(2026, 12, 4, 2, 0, 0)
                .single()
                .expect("t")
        );
        assert!(parse_schedule("not cron").is_err());
        let utc = parse_time_zone("UTC").expect("tz");
        // Metrics: every six hours.
        let six = parse_schedule("0 */6 * * *").expect("cron");
        assert_eq!(
            next_run(&six, utc, now).expect("next"),
            Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
                .single()
                .expect("t")
        );
        // Events: Sundays at 04:00 (2026-12-03 is a Thursday).
        let weekly = parse_schedule("0 4 * * 0").expect("cron");
        assert_eq!(
            next_run(&weekly, utc, now).expect("next"),
            Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0)
                .single()
                .expect("t")
        );
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }
}
