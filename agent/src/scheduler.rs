//! Scheduled server tasks, run by the agent so they keep running while the controller is away.
//! The schedules arrive inside server specs (and are cached with them). One task plans every
//! schedule of every server: the next occurrence of its cron expression in its time zone, and the
//! steps of that occurrence (the warnings before a restart, then the action). A step runs when its
//! time has come; a step still running (a restart) holds back the next one of the same schedule.
//! Every step that ran is reported as a `ScheduleRun` event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use languard_proto::v1 as pb;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::outbox::Outbox;
use crate::supervisor::Supervisor;

/// How often due steps are looked for.
const TICK: Duration = Duration::from_millis(250);
/// The default warning text.
const DEFAULT_WARNING: &str = "Server restart in {minutes} minute(s)";

/// One step of an occurrence.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Tell everyone the restart is `seconds` away.
    Warning {
        /// Seconds left.
        seconds: i32,
        /// The text, placeholders filled in.
        text: String,
    },
    /// Restart the server (when it runs).
    Restart,
    /// Send a message to everyone.
    Message(String),
    /// Send a raw RCon command.
    Command(String),
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Warning { .. } => "warning",
            Step::Restart => "restart",
            Step::Message(_) => "message",
            Step::Command(_) => "command",
        }
    }
}

/// The warning text for `seconds` left: `{minutes}` (rounded up) and `{seconds}` filled in.
pub fn warning_text(template: &str, seconds: i32) -> String {
    let t = if template.trim().is_empty() {
        DEFAULT_WARNING
    } else {
        template
    };
    let minutes = (seconds + 59) / 60;
    t.replace("{minutes}", &minutes.to_string())
        .replace("{seconds}", &seconds.to_string())
}

/// Parses the cron expression and time zone of a schedule.
pub fn parse(s: &pb::Schedule) -> Result<(Cron, Tz), String> {
    let cron = croner::parser::CronParser::new()
        .parse(s.cron.trim())
        .map_err(|e| format!("cron {:?}: {e}", s.cron))?;
    let tz = if s.time_zone.is_empty() {
        chrono_tz::UTC
    } else {
        s.time_zone
            .parse::<Tz>()
            .map_err(|_| format!("unknown time zone {:?}", s.time_zone))?
    };
    Ok((cron, tz))
}

/// The first occurrence strictly after `after`.
pub fn next_occurrence(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The steps of the occurrence at `at`, in time order, leaving out those due at or before `now`
/// (a warning whose time has passed is not sent late).
pub fn steps_of(
    action: &pb::schedule::Action,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Step)> {
    let mut v = Vec::new();
    match action {
        pb::schedule::Action::Restart(r) => {
            let mut w = r.warning_seconds.clone();
            w.sort_unstable_by(|a, b| b.cmp(a));
            w.dedup();
            for seconds in w.into_iter().filter(|s| *s > 0) {
                let when = at - chrono::Duration::seconds(i64::from(seconds));
                if when > now {
                    v.push((
                        when,
                        Step::Warning {
                            seconds,
                            text: warning_text(&r.warning_message, seconds),
                        },
                    ));
                }
            }
            v.push((at, Step::Restart));
        }
        pb::schedule::Action::Message(m) => v.push((at, Step::Message(m.text.clone()))),
        pb::schedule::Action::Command(c) => v.push((at, Step::Command(c.command.clone()))),
    }
    v
}

/// The plan of one schedule: its current occurrence and which steps are left.
struct Plan {
    /// What the plan was made from; a changed schedule is planned again.
    fingerprint: String,
    server_id: i64,
    cron: Cron,
    tz: Tz,
    action: pb::schedule::Action,
    occurrence: DateTime<Utc>,
    steps: Vec<(DateTime<Utc>, Step)>,
    next: usize,
    running: Option<JoinHandle<()>>,
}

fn fingerprint(server_id: i64, s: &pb::Schedule) -> String {
    format!("{server_id}|{}|{}|{:?}", s.cron, s.time_zone, s.action)
}

/// Runs every schedule of every server until `cancel`.
pub async fn run(
    sup: Supervisor,
    outbox: Arc<Outbox>,
    stats: Arc<crate::stats::AgentStats>,
    cancel: CancellationToken,
) {
    let mut plans: HashMap<i64, Plan> = HashMap::new();
    // Schedules that cannot run, with the fingerprint they were judged by (judged again on change).
    let mut invalid: HashMap<i64, (String, String)> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = Utc::now();
        let wanted = sup.schedules();
        // A removed or disabled schedule is forgotten; a step of it in progress finishes.
        plans.retain(|id, _| wanted.iter().any(|(_, s)| s.id == *id && s.enabled));
        for (server_id, s) in &wanted {
            if !s.enabled {
                continue;
            }
            let fp = fingerprint(*server_id, s);
            if plans.get(&s.id).is_some_and(|p| p.fingerprint == fp) {
                continue;
            }
            let Some(action) = s.action.clone() else {
                continue;
            };
            if invalid.get(&s.id).is_some_and(|(f, _)| *f == fp) {
                continue;
            }
            match parse(s) {
                Ok((cron, tz)) => {
                    let Some(at) = next_occurrence(&cron, tz, now) else {
                        tracing::warn!(schedule_id = s.id, cron = %s.cron, "schedule never fires");
                        invalid.insert(s.id, (fp, "never fires".into()));
                        continue;
                    };
                    invalid.remove(&s.id);
                    tracing::info!(schedule_id = s.id, server_id, next = %at, "schedule planned");
                    plans.insert(
                        s.id,
                        Plan {
                            fingerprint: fp,
                            server_id: *server_id,
                            steps: steps_of(&action, at, now),
                            cron,
                            tz,
                            action,
                            occurrence: at,
                            next: 0,
                            running: None,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(schedule_id = s.id, error = %e, "schedule cannot run");
                    invalid.insert(s.id, (fp, e));
                }
            }
        }
        for (id, plan) in &mut plans {
            if plan.running.as_ref().is_some_and(|h| !h.is_finished()) {
                continue;
            }
            plan.running = None;
            if plan.next >= plan.steps.len() {
                let after = plan.occurrence.max(now);
                if let Some(at) = next_occurrence(&plan.cron, plan.tz, after) {
                    plan.occurrence = at;
                    plan.steps = steps_of(&plan.action, at, now);
                    plan.next = 0;
                }
                continue;
            }
            let (when, step) = plan.steps[plan.next].clone();
            if when > now {
                continue;
            }
            plan.next += 1;
            let (sup, outbox, stats, schedule_id, server_id, occurrence) = (
                sup.clone(),
                outbox.clone(),
                stats.clone(),
                *id,
                plan.server_id,
                plan.occurrence,
            );
            plan.running = Some(
                tracker.spawn(
                    async move {
                        let (ok, detail) = execute(&sup, server_id, schedule_id, &step).await;
                        if let Some(detail) = detail {
                            stats.schedule_step(ok);
                            tracing::info!(ok, %detail, "schedule step ran");
                            let body = pb::agent_event::Body::ScheduleRun(pb::ScheduleRun {
                                schedule_id,
                                occurrence_time: Some(prost_types::Timestamp {
                                    seconds: occurrence.timestamp(),
                                    nanos: 0,
                                }),
                                step: step.name().to_owned(),
                                ok,
                                detail,
                            });
                            if outbox.push(server_id, body).is_none() {
                                tracing::warn!("spool full: schedule result not recorded");
                            }
                        }
                    }
                    .instrument(tracing::info_span!(
                        "schedule",
                        schedule_id,
                        server_id
                    )),
                ),
            );
        }
    }
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("schedule steps still running at shutdown");
    }
}

/// Runs one step; the outcome to record (`None`: nothing worth recording, such as a warning to
/// a server that is not running).
async fn execute(
    sup: &Supervisor,
    server_id: i64,
    schedule_id: i64,
    step: &Step,
) -> (bool, Option<String>) {
    let running = sup.is_running(server_id);
    match step {
        Step::Warning { text, .. } => {
            if !running {
                return (true, None);
            }
            match sup.rcon(server_id, &format!("say -1 {text}")).await {
                Ok(_) => (true, Some(text.clone())),
                Err(e) => (false, Some(format!("warning {text:?} not sent: {e}"))),
            }
        }
        Step::Restart => {
            if !running {
                return (true, Some("skipped: the server is not running".into()));
            }
            match sup
                .restart(server_id, &format!("schedule:{schedule_id}"))
                .await
            {
                Ok(state) => (true, Some(format!("restarted (pid {})", state.pid))),
                Err(e) => (false, Some(format!("restart failed: {e}"))),
            }
        }
        Step::Message(text) => match sup.rcon(server_id, &format!("say -1 {text}")).await {
            Ok(_) => (true, Some(text.clone())),
            Err(e) => (false, Some(format!("message not sent: {e}"))),
        },
        Step::Command(cmd) => match sup.rcon(server_id, cmd).await {
            Ok(answer) => (true, Some(format!("{cmd}: {}", answer.trim()))),
            Err(e) => (false, Some(format!("{cmd}: {e}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_restart_occurrence_has_its_warnings_first() {
        let action = pb::schedule::Action::Restart(pb::RestartAction {
            warning_seconds: vec![60, 900, 300],
            warning_message: String::new(),
        });
        let at = t("2026-12-04T04:00:00Z");
        let steps = steps_of(&action, at, t("2026-12-03T12:00:00Z"));
        let times: Vec<String> = steps
            .iter()
            .map(|(w, _)| w.format("%H:%M").to_string())
            .collect();
        assert_eq!(times, vec!["03:45", "03:55", "03:59", "04:00"]);
        assert_eq!(
            steps[0].1,
            Step::Warning {
                seconds: 900,
                text: "Server restart in 15 minute(s)".into()
            }
        );
        assert_eq!(steps[3].1, Step::Restart);
        // Planned at 03:57: only the 1-minute warning is still ahead.
        let late = steps_of(&action, at, t("2026-12-04T03:57:00Z"));
        assert_eq!(late.len(), 2);
        assert!(matches!(late[0].1, Step::Warning { seconds: 60, .. }));
    }

    #[test]
    fn warning_text_fills_minutes_rounded_up_and_seconds() {
        assert_eq!(warning_text("", 300), "Server restart in 5 minute(s)");
        assert_eq!(
            warning_text("in {minutes}m / {seconds}s", 61),
            "in 2m / 61s"
        );
    }

    #[test]
    fn occurrences_follow_the_time_zone() {
        let s = pb::Schedule {
            cron: "0 4 * * *".into(),
            time_zone: "Europe/Berlin".into(),
            ..Default::default()
        };
        let (cron, tz) = parse(&s).expect("parse");
        let next = next_occurrence(&cron, tz, t("2026-12-03T10:00:00Z")).expect("next");
        assert_eq!(next, t("2026-12-04T03:00:00Z"));
        let bad = pb::Schedule {
            cron: "0 4 * * *".into(),
            time_zone: "Nowhere/Land".into(),
            ..Default::default()
        };
        assert!(parse(&bad).is_err());
    }
}
