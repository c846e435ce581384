//! Converting the log's local wall-clock times to UTC.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RptError {
    /// The time-zone name is neither `UTC`, `local`, nor an IANA name such as `Europe/Berlin`.
    #[error(
        "unknown time zone {0:?} (expected \"UTC\", \"local\" or an IANA name like \"Europe/Berlin\")"
    )]
    UnknownTimeZone(String),
}

/// The time zone the server's clock runs in (the `.rpt` times are local wall-clock times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTimeZone {
    /// The server clock is UTC.
    Utc,
    /// The time zone of the machine running this code.
    Local,
    /// A named IANA zone.
    Named(chrono_tz::Tz),
}

impl FromStr for LogTimeZone {
    type Err = RptError;

    /// Accepts `UTC`/`Z` (any case), `local` (any case) and IANA names (`Europe/Berlin`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") {
            Ok(LogTimeZone::Utc)
        } else if t.eq_ignore_ascii_case("local") {
            Ok(LogTimeZone::Local)
        } else {
            chrono_tz::Tz::from_str(t)
                .map(LogTimeZone::Named)
                .map_err(|_| RptError::UnknownTimeZone(s.to_owned()))
        }
    }
}

impl LogTimeZone {
    /// Reads `local` as wall-clock time in this zone and returns the UTC instant. Never panics:
    /// an ambiguous time (DST fall-back) resolves to the earlier instant; a time that does not
    /// exist (DST spring-forward gap) is shifted forward by the length of the gap (02:30 in a
    /// 02:00→03:00 gap becomes 03:30).
    #[must_use]
    pub fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self {
            LogTimeZone::Utc => local.and_utc(),
            LogTimeZone::Local => resolve(&chrono::Local, local),
            LogTimeZone::Named(tz) => resolve(tz, local),
        }
    }
}

/// Converts local wall-clock time in the zone named `tz` (see [`LogTimeZone::from_str`]) to UTC.
///
/// ```
/// use chrono::NaiveDateTime;
/// let t = NaiveDateTime::parse_from_str("2021-10-05 08:38:26", "%Y-%m-%d %H:%M:%S").unwrap();
/// let utc = languard_rpt::local_to_utc(t, "Europe/Berlin").unwrap();
/// assert_eq!(utc.to_rfc3339(), "2021-10-05T06:38:26+00:00");
/// ```
///
/// # Errors
/// [`RptError::UnknownTimeZone`] for an unknown name.
pub fn local_to_utc(local: NaiveDateTime, tz: &str) -> Result<DateTime<Utc>, RptError> {
    Ok(tz.parse::<LogTimeZone>()?.to_utc(local))
}

fn resolve<Tz: TimeZone>(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(d) => d.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            a.min(b)
        }
        LocalResult::None => {
            // In a gap: use the offset in force just before it, which moves the time forward
            // by the gap's length.
            for hours in [1, 2, 3, 6, 12, 24, 48] {
                let Some(before) = local.checked_sub_signed(TimeDelta::hours(hours)) else {
                    break;
                };
                if let Some(d) = tz.from_local_datetime(&before).earliest() {
                    let off = i64::from(d.offset().fix().local_minus_utc());
                    if let Some(utc) = local.checked_sub_signed(TimeDelta::seconds(off)) {
                        return utc.and_utc();
                    }
                }
            }
            local.and_utc()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn parse_names() {
        assert_eq!("UTC".parse::<LogTimeZone>(), Ok(LogTimeZone::Utc));
        assert_eq!(" utc ".parse::<LogTimeZone>(), Ok(LogTimeZone::Utc));
        assert_eq!("Local".parse::<LogTimeZone>(), Ok(LogTimeZone::Local));
        assert_eq!(
            "Europe/Berlin".parse::<LogTimeZone>(),
            Ok(LogTimeZone::Named(chrono_tz::Europe::Berlin))
        );
        assert_eq!(
            "Mars/Olympus".parse::<LogTimeZone>(),
            Err(RptError::UnknownTimeZone("Mars/Olympus".into()))
        );
        assert!(local_to_utc(dt("2021-01-01 00:00:00"), "nope").is_err());
    }

    #[test]
    fn berlin_summer_winter() {
        let s = local_to_utc(dt("2021-07-01 12:00:00"), "Europe/Berlin").unwrap();
        assert_eq!(s.naive_utc(), dt("2021-07-01 10:00:00"));
        let w = local_to_utc(dt("2021-01-01 12:00:00"), "Europe/Berlin").unwrap();
        assert_eq!(w.naive_utc(), dt("2021-01-01 11:00:00"));
        let u = local_to_utc(dt("2021-01-01 12:00:00"), "UTC").unwrap();
        assert_eq!(u.naive_utc(), dt("2021-01-01 12:00:00"));
    }

    #[test]
    fn dst_ambiguous_picks_earlier() {
        // 2021-10-31 02:30 happens twice in Berlin: 00:30 UTC (CEST) and 01:30 UTC (CET)
        let t = local_to_utc(dt("2021-10-31 02:30:00"), "Europe/Berlin").unwrap();
        assert_eq!(t.naive_utc(), dt("2021-10-31 00:30:00"));
    }

    #[test]
    fn dst_gap_shifts_forward() {
        // 2021-03-28 02:30 does not exist in Berlin; read as 03:30 CEST = 01:30 UTC
        let t = local_to_utc(dt("2021-03-28 02:30:00"), "Europe/Berlin").unwrap();
        assert_eq!(t.naive_utc(), dt("2021-03-28 01:30:00"));
        // the instants around the gap stay ordered
        let before = local_to_utc(dt("2021-03-28 01:59:59"), "Europe/Berlin").unwrap();
        let after = local_to_utc(dt("2021-03-28 03:00:00"), "Europe/Berlin").unwrap();
        assert!(before < after);
        assert_eq!(after.naive_utc(), dt("2021-03-28 01:00:00"));
    }

    #[test]
    fn extremes_do_not_panic() {
        for tz in [
            "Europe/Berlin",
            "America/St_Johns",
            "Pacific/Kiritimati",
            "local",
            "UTC",
        ] {
            let tz: LogTimeZone = tz.parse().unwrap();
            let _ = tz.to_utc(NaiveDateTime::MIN);
            let _ = tz.to_utc(NaiveDateTime::MAX);
        }
    }
}
