//! `MetricService`: a server's or a node's resource history, downsampled by the database.
//!
//! One `GROUP BY` over the step bucket returns at most 10,000 rows whatever the number of samples
//! (a week of 10-second samples is 60,480 rows; at 5-minute steps it comes back as 2,016 points).
//! Buckets are aligned to multiples of the step since the Unix epoch:
//! - SQLite stores `timestamptz` columns as RFC 3339 text (`2026-12-03T10:00:00.5+00:00`), which
//!   `unixepoch()` reads: `(unixepoch(ts) / step) * step` (integer division floors; times are after
//!   1970).
//! - PostgreSQL: `floor(extract(epoch from ts) / step) * step`.

use chrono::{DateTime, Utc};
use languard_proto::v1 as pb;
use languard_proto::v1::metric_service_server::MetricService;
use sea_orm::sea_query::{Alias, Expr, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait};
use tonic::{Request, Response, Status};

use super::{Ctx, convert};
use crate::auth::Role;
use crate::db::entities::{metrics, nodes, servers};
use crate::error::{ApiError, ApiResult};

/// Smallest step, seconds (the agent samples every 10 s by default).
pub const MIN_STEP_SECONDS: i64 = 10;
/// The default step aims at this many points.
pub const TARGET_POINTS: i64 = 500;
/// Most points one call may return.
pub const MAX_POINTS: i64 = 10_000;
/// Default range when no start is given, seconds.
pub const DEFAULT_RANGE_SECONDS: i64 = 3600;

/// The `MetricService` implementation.
pub struct MetricApi {
    ctx: Ctx,
}

/// Whose samples: a server's, or a node's own (`server_id IS NULL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Server(i64),
    Node(i64),
}

/// The validated range and step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: i64,
}

fn subject(r: &pb::ListMetricsRequest) -> ApiResult<Subject> {
    match (r.server_id, r.node_id) {
        (0, 0) => Err(ApiError::invalid(
            "server_id",
            "one of server_id and node_id is required",
        )),
        (s, 0) if s > 0 => Ok(Subject::Server(s)),
        (0, n) if n > 0 => Ok(Subject::Node(n)),
        (s, 0) if s < 0 => Err(ApiError::invalid("server_id", "must be positive")),
        (0, _) => Err(ApiError::invalid("node_id", "must be positive")),
        _ => Err(ApiError::invalid(
            "node_id",
            "set either server_id or node_id, not both",
        )),
    }
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// Range defaults (end = now, start = end - 1 h) and the step: the range over [`TARGET_POINTS`]
/// rounded up to a multiple of 10 s, at least [`MIN_STEP_SECONDS`]; an explicit step must be at
/// least that and give at most [`MAX_POINTS`] points.
fn window(r: &pb::ListMetricsRequest, now: DateTime<Utc>) -> ApiResult<Window> {
    let end = match &r.end_time {
        Some(t) => convert::from_timestamp(t)
            .ok_or_else(|| ApiError::invalid("end_time", "out of range"))?,
        None => now,
    };
    let start = match &r.start_time {
        Some(t) => convert::from_timestamp(t)
            .ok_or_else(|| ApiError::invalid("start_time", "out of range"))?,
        None => end - chrono::Duration::seconds(DEFAULT_RANGE_SECONDS),
    };
    if start >= end {
        return Err(ApiError::invalid("start_time", "must be before end_time"));
    }
    if start.timestamp() < 0 {
        return Err(ApiError::invalid("start_time", "must be after 1970"));
    }
    // Whole seconds, rounded up: a range of 1.5 s counts as 2.
    let range = (end - start).num_milliseconds().saturating_add(999) / 1000;
    let step = match r.step_seconds {
        0 => {
            let raw = ceil_div(range, TARGET_POINTS);
            ceil_div(raw, 10).saturating_mul(10).max(MIN_STEP_SECONDS)
        }
        s if i64::from(s) < MIN_STEP_SECONDS => {
            return Err(ApiError::invalid(
                "step_seconds",
                format!("must be at least {MIN_STEP_SECONDS}"),
            ));
        }
        s => i64::from(s),
    };
    if step > i64::from(i32::MAX) {
        return Err(ApiError::invalid("start_time", "the range is too long"));
    }
    let points = ceil_div(range, step);
    if points > MAX_POINTS {
        return Err(ApiError::invalid(
            "step_seconds",
            format!(
                "{step} s over {range} s gives {points} points; at most {MAX_POINTS} (use a step of at least {} s)",
                ceil_div(range, MAX_POINTS)
            ),
        ));
    }
    Ok(Window { start, end, step })
}

/// The bucket start in epoch seconds, as SQL for `backend`. `step` is a validated integer, so it
/// is written into the text (no bind parameter whose type each back-end infers differently).
fn bucket_sql(backend: DatabaseBackend, step: i64) -> String {
    match backend {
        DatabaseBackend::Postgres => {
            format!("CAST(floor(extract(epoch FROM ts) / {step}) AS BIGINT) * {step}")
        }
        _ => format!("(unixepoch(ts) / {step}) * {step}"),
    }
}

/// A number from the `extra` JSON text of a sample, as SQL for `backend` (NULL when absent).
/// `key` is a constant of this module, never input.
fn extra_sql(backend: DatabaseBackend, key: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => {
            format!("CAST(CAST(extra AS json)->>'{key}' AS DOUBLE PRECISION)")
        }
        _ => format!("CAST(json_extract(extra, '$.{key}') AS REAL)"),
    }
}

impl MetricApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn require(&self, s: Subject) -> ApiResult<()> {
        let found = match s {
            Subject::Server(id) => servers::Entity::find_by_id(id)
                .one(&self.ctx.db)
                .await?
                .is_some(),
            Subject::Node(id) => nodes::Entity::find_by_id(id)
                .one(&self.ctx.db)
                .await?
                .is_some(),
        };
        if found {
            Ok(())
        } else {
            Err(ApiError::NotFound(match s {
                Subject::Server(id) => format!("server {id} not found"),
                Subject::Node(id) => format!("node {id} not found"),
            }))
        }
    }

    async fn list(&self, r: pb::ListMetricsRequest) -> ApiResult<pb::ListMetricsResponse> {
        let who = subject(&r)?;
        let w = window(&r, Utc::now())?;
        self.require(who).await?;
        let backend = self.ctx.db.get_database_backend();
        let bucket = Alias::new("bucket");
        let mut q = Query::select();
        q.expr_as(Expr::cust(bucket_sql(backend, w.step)), bucket.clone())
            .expr_as(
                Expr::cust("CAST(AVG(cpu_percent) AS DOUBLE PRECISION)"),
                Alias::new("cpu_avg"),
            )
            .expr_as(
                Expr::cust("CAST(MAX(cpu_percent) AS DOUBLE PRECISION)"),
                Alias::new("cpu_max"),
            )
            .expr_as(
                Expr::cust("CAST(AVG(mem_rss_bytes) AS DOUBLE PRECISION)"),
                Alias::new("mem_avg"),
            )
            .expr_as(
                Expr::cust("CAST(MAX(mem_rss_bytes) AS DOUBLE PRECISION)"),
                Alias::new("mem_max"),
            )
            .expr_as(
                Expr::cust("CAST(AVG(mem_virtual_bytes) AS DOUBLE PRECISION)"),
                Alias::new("virt_avg"),
            )
            .expr_as(
                Expr::cust("CAST(MAX(mem_virtual_bytes) AS DOUBLE PRECISION)"),
                Alias::new("virt_max"),
            )
            .expr_as(
                Expr::cust("CAST(MAX(threads) AS BIGINT)"),
                Alias::new("threads_max"),
            );
        for (key, agg, alias) in [
            ("uptime_seconds", "MAX", "uptime_max"),
            ("load1", "AVG", "load1_avg"),
            ("load1", "MAX", "load1_max"),
            ("net_rx_bytes_per_second", "AVG", "rx_avg"),
            ("net_tx_bytes_per_second", "AVG", "tx_avg"),
        ] {
            q.expr_as(
                Expr::cust(format!(
                    "CAST(COALESCE({agg}({}), 0) AS DOUBLE PRECISION)",
                    extra_sql(backend, key)
                )),
                Alias::new(alias),
            );
        }
        q.expr_as(Expr::cust("COUNT(*)"), Alias::new("samples"))
            .from(metrics::Entity)
            .and_where(metrics::Column::Ts.gte(w.start))
            .and_where(metrics::Column::Ts.lt(w.end))
            .group_by_col(bucket.clone())
            .order_by(bucket, Order::Asc);
        match who {
            Subject::Server(id) => {
                q.and_where(metrics::Column::ServerId.eq(id));
            }
            Subject::Node(id) => {
                q.and_where(metrics::Column::NodeId.eq(id))
                    .and_where(metrics::Column::ServerId.is_null());
            }
        }
        let rows = self.ctx.db.query_all(&q).await?;
        let mut points = Vec::with_capacity(rows.len());
        for row in rows {
            let bucket: i64 = row.try_get("", "bucket")?;
            let samples: i64 = row.try_get("", "samples")?;
            let time = DateTime::<Utc>::from_timestamp(bucket, 0)
                .ok_or_else(|| ApiError::Internal(format!("bucket {bucket} out of range")))?;
            points.push(pb::MetricPoint {
                time: Some(convert::timestamp(time)),
                cpu_percent_avg: row.try_get("", "cpu_avg")?,
                cpu_percent_max: row.try_get("", "cpu_max")?,
                memory_bytes_avg: row.try_get("", "mem_avg")?,
                memory_bytes_max: row.try_get("", "mem_max")?,
                samples: i32::try_from(samples).unwrap_or(i32::MAX),
                virtual_memory_bytes_avg: row.try_get("", "virt_avg")?,
                virtual_memory_bytes_max: row.try_get("", "virt_max")?,
                threads_max: i32::try_from(row.try_get::<i64>("", "threads_max")?)
                    .unwrap_or(i32::MAX),
                uptime_seconds_max: row.try_get("", "uptime_max")?,
                load1_avg: row.try_get("", "load1_avg")?,
                load1_max: row.try_get("", "load1_max")?,
                net_rx_bytes_per_second_avg: row.try_get("", "rx_avg")?,
                net_tx_bytes_per_second_avg: row.try_get("", "tx_avg")?,
            });
        }
        Ok(pb::ListMetricsResponse {
            // Fits: `window` refuses steps beyond i32.
            step_seconds: i32::try_from(w.step).unwrap_or(i32::MAX),
            points,
        })
    }
}

#[tonic::async_trait]
impl MetricService for MetricApi {
    async fn list_metrics(
        &self,
        req: Request<pb::ListMetricsRequest>,
    ) -> Result<Response<pb::ListMetricsResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        Ok(Response::new(self.list(req.into_inner()).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        }
    }

    fn field(e: ApiError) -> String {
        match e {
            ApiError::InvalidArgument { field, .. } => field,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn exactly_one_subject_is_required() {
        let r = |server_id, node_id| pb::ListMetricsRequest {
            server_id,
            node_id,
            ..Default::default()
        };
        assert_eq!(subject(&r(3, 0)).ok(), Some(Subject::Server(3)));
        assert_eq!(subject(&r(0, 4)).ok(), Some(Subject::Node(4)));
        assert_eq!(field(subject(&r(0, 0)).expect_err("neither")), "server_id");
        assert_eq!(field(subject(&r(1, 2)).expect_err("both")), "node_id");
        assert_eq!(field(subject(&r(-1, 0)).expect_err("neg")), "server_id");
        assert_eq!(field(subject(&r(0, -1)).expect_err("neg")), "node_id");
    }

    #[test]
    fn defaults_and_limits_of_the_window() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 3, 10, 0, 0)
            .single()
            .expect("t");
        // Defaults: the last hour, 3600 / 500 = 7.2 → 10 s.
        let w = window(&pb::ListMetricsRequest::default(), now).expect("window");
        assert_eq!(w.end, now);
        assert_eq!(w.start, now - chrono::Duration::hours(1));
        assert_eq!(w.step, 10);
        // A week: 604800 / 500 = 1209.6 → 1210 s, 500 points.
        let week = pb::ListMetricsRequest {
            start_time: Some(at(now.timestamp() - 7 * 86400)),
            end_time: Some(at(now.timestamp())),
            ..Default::default()
        };
        assert_eq!(window(&week, now).expect("week").step, 1210);
        // A week at 60 s is 10,080 points: refused; at 70 s it is 8,640: fine.
        let e = window(
            &pb::ListMetricsRequest {
                step_seconds: 60,
                ..week
            },
            now,
        )
        .expect_err("too many points");
        assert_eq!(field(e), "step_seconds");
        assert!(
            window(
                &pb::ListMetricsRequest {
                    step_seconds: 70,
                    ..week
                },
                now
            )
            .is_ok()
        );
        // A step below 10 s, or a negative one.
        for s in [5, -10] {
            let e = window(
                &pb::ListMetricsRequest {
                    step_seconds: s,
                    ..Default::default()
                },
                now,
            )
            .expect_err("small step");
            assert_eq!(field(e), "step_seconds");
        }
        // An empty or inverted range.
        let e = window(
            &pb::ListMetricsRequest {
                start_time: Some(at(now.timestamp())),
                end_time: Some(at(now.timestamp())),
                ..Default::default()
            },
            now,
        )
        .expect_err("empty");
        assert_eq!(field(e), "start_time");
        // A timestamp out of range.
        let e = window(
            &pb::ListMetricsRequest {
                end_time: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..Default::default()
            },
            now,
        )
        .expect_err("out of range");
        assert_eq!(field(e), "end_time");
        // Ten years at the default step: 10 years / 500 rounded up to 10 s.
        let decade = pb::ListMetricsRequest {
            start_time: Some(at(now.timestamp() - 3650 * 86400)),
            end_time: Some(at(now.timestamp())),
            ..Default::default()
        };
        let w = window(&decade, now).expect("decade");
        assert_eq!(w.step % 10, 0);
        assert!(ceil_div(3650 * 86400, w.step) <= TARGET_POINTS);
    }

    #[test]
    fn bucket_sql_per_backend() {
        assert_eq!(
            bucket_sql(DatabaseBackend::Sqlite, 300),
            "(unixepoch(ts) / 300) * 300"
        );
        assert!(
            bucket_sql(DatabaseBackend::Postgres, 300).contains("extract(epoch FROM ts) / 300")
        );
    }
}
