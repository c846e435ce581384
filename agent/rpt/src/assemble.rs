//! Turning lines into entries: header, continuation lines, full dates with midnight roll-over.

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};

use crate::line::{Kind, Level, ParsedLine, Timestamp, parse_line};
use crate::tz::LogTimeZone;

/// One log entry: a timestamped line plus its continuation lines, or one header line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Local wall-clock time of the entry (see [`Entry::date_known`]). Continuation lines share
    /// the time of the line that started the entry; header entries get the file's start time.
    pub time: NaiveDateTime,
    /// `false` when no date was known (no file-name date, no header `Current time:`, no full-form
    /// line yet): `time` then carries the placeholder date 1970-01-01 (plus roll-overs).
    pub date_known: bool,
    /// Severity of the first line.
    pub level: Level,
    /// Structured meaning of the first line; [`Kind::Header`] for header lines.
    pub kind: Kind<'static>,
    /// The message without timestamp; continuation lines joined with `\n`. Blank (or
    /// whitespace-only) lines inside a block are kept as empty lines, those at its end are dropped. When the entry hit the size limits it
    /// ends in a line `[... N more line(s) truncated]` (see [`Entry::truncated`]).
    pub text: String,
    /// Number of input lines that make up the entry (including lines dropped by the limits,
    /// excluding trailing blank lines).
    pub line_count: u32,
    /// The entry hit [`Limits`] and lost lines or bytes.
    pub truncated: bool,
}

impl Entry {
    /// [`Entry::time`] converted to UTC, reading it as wall-clock time in `tz`.
    #[must_use]
    pub fn time_utc(&self, tz: &LogTimeZone) -> chrono::DateTime<chrono::Utc> {
        tz.to_utc(self.time)
    }

    /// `true` for entries of the header block.
    #[must_use]
    pub fn is_header(&self) -> bool {
        matches!(self.kind, Kind::Header { .. })
    }
}

/// Bounds for one entry, so that a runaway continuation (a mod dumping megabytes without
/// timestamps) cannot grow an entry without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most input lines kept in one entry's text (at least 1 is always kept).
    pub max_entry_lines: u32,
    /// Most bytes of one entry's text (the truncation marker comes on top).
    pub max_entry_bytes: usize,
}

impl Default for Limits {
    /// 1000 lines, 64 KiB.
    fn default() -> Self {
        Limits {
            max_entry_lines: 1000,
            max_entry_bytes: 64 * 1024,
        }
    }
}

/// Stateful, I/O-free assembler: feed it lines in order with [`push`](Self::push), and it hands
/// back each entry as soon as the next one starts; call [`flush`](Self::flush) at the end (or
/// when a tailed file has been idle) to get the last one.
///
/// Rules:
/// - Lines without a timestamp before the first timestamped line form the header: each non-blank
///   line that is not a `=====` separator becomes one entry of kind [`Kind::Header`]. A header
///   `Current time:  YYYY/MM/DD HH:MM:SS` line supplies the date when none was given.
/// - After the header, a line without a timestamp continues the entry before it.
/// - `  Error position: ...`, `  Error ...` and `File ..., line N` lines that carry the same
///   timestamp as the `Error in expression <...>` entry they follow are merged into that entry.
/// - Full-form lines set the date; short-form lines take the current date and move to the next
///   day when the time goes backwards by more than the roll-over threshold (default 2 hours, so
///   a DST fall-back of one hour is not a new day).
///
/// ```
/// use languard_rpt::{EntryAssembler, date_from_file_name};
/// let start = date_from_file_name("arma3server_x64_2021-10-05_23-59-58.rpt");
/// let mut asm = EntryAssembler::new(start);
/// let mut out = Vec::new();
/// for line in ["23:59:59 Error in expression <a", "b>", " 0:00:01 next day"] {
///     out.extend(asm.push(line));
/// }
/// out.extend(asm.flush());
/// assert_eq!(out[0].text, "Error in expression <a\nb>");
/// assert_eq!(out[1].time.to_string(), "2021-10-06 00:00:01");
/// ```
#[derive(Debug, Clone)]
pub struct EntryAssembler {
    limits: Limits,
    rollover: TimeDelta,
    in_header: bool,
    header_exe_seen: bool,
    date: NaiveDate,
    date_known: bool,
    last: Option<NaiveDateTime>,
    cur: Option<Pending>,
}

#[derive(Debug, Clone)]
struct Pending {
    entry: Entry,
    /// Blank continuation lines not yet appended (only kept if more text follows).
    blanks: u32,
    dropped_lines: u32,
    /// The entry is an `Error in expression` block that may take error-tail lines.
    expr_error: bool,
}

const PLACEHOLDER_DATE: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

impl EntryAssembler {
    /// A new assembler. `file_start` is the local start time of the log, usually from
    /// [`date_from_file_name`]; it dates short-form lines until a full-form line is seen.
    #[must_use]
    pub fn new(file_start: Option<NaiveDateTime>) -> Self {
        EntryAssembler {
            limits: Limits::default(),
            rollover: TimeDelta::hours(2),
            in_header: true,
            header_exe_seen: false,
            date: file_start.map_or(PLACEHOLDER_DATE, |d| d.date()),
            date_known: file_start.is_some(),
            last: file_start,
            cur: None,
        }
    }

    /// Sets the per-entry [`Limits`].
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how far a short-form time must go backwards to count as the next day (default two
    /// hours).
    #[must_use]
    pub fn with_rollover_threshold(mut self, threshold: TimeDelta) -> Self {
        self.rollover = threshold;
        self
    }

    /// Treats the header as already read: for resuming a file from a saved offset, where a
    /// leading line without a timestamp is a continuation, not a header line. Pass the time of
    /// the last entry read to [`new`](Self::new) so short-form dates and roll-over carry on.
    #[must_use]
    pub fn after_header(mut self) -> Self {
        self.in_header = false;
        self
    }

    /// `true` while no timestamped line has been seen (lines are header lines).
    #[must_use]
    pub fn in_header(&self) -> bool {
        self.in_header
    }

    /// The time of the last timestamped line (or the file start), if any.
    #[must_use]
    pub fn last_time(&self) -> Option<NaiveDateTime> {
        self.last
    }

    /// Feeds one line (a trailing `\r`/`\n` is ignored). Returns the previous entry when this
    /// line starts a new one.
    pub fn push(&mut self, line: &str) -> Option<Entry> {
        let p = parse_line(line);
        if !p.timestamp.is_some() {
            if self.in_header {
                return self.header_line(p.text);
            }
            self.continuation(p.text);
            return None;
        }
        self.in_header = false;
        let time = self.resolve_time(p.timestamp);
        if let Some(cur) = &mut self.cur
            && cur.expr_error
            && cur.entry.time == time
            && is_error_tail(p.text)
        {
            Self::append(&self.limits, cur, p.text);
            return None;
        }
        self.start(p, time)
    }

    /// Ends the current entry, if any, and returns it.
    pub fn flush(&mut self) -> Option<Entry> {
        self.cur.take().map(finish)
    }

    fn resolve_time(&mut self, ts: Timestamp) -> NaiveDateTime {
        let dt = match ts {
            Timestamp::Full { date, time } => {
                self.date = date;
                self.date_known = true;
                date.and_time(time)
            }
            _ => {
                let time = ts.time().unwrap_or(NaiveTime::MIN);
                let mut dt = self.date.and_time(time);
                if let Some(last) = self.last
                    && last.signed_duration_since(dt) > self.rollover
                    && let Some(next) = self.date.succ_opt()
                {
                    self.date = next;
                    dt = next.and_time(time);
                }
                dt
            }
        };
        self.last = Some(dt);
        dt
    }

    fn current_time(&self) -> NaiveDateTime {
        self.last
            .unwrap_or_else(|| self.date.and_time(NaiveTime::MIN))
    }

    fn header_line(&mut self, text: &str) -> Option<Entry> {
        let t = text.trim_ascii();
        if t.is_empty() || t.bytes().all(|b| b == b'=') {
            return None;
        }
        let (key, value) = if let Some(v) = t.strip_prefix("==") {
            let key = if self.header_exe_seen {
                "command_line"
            } else {
                self.header_exe_seen = true;
                "exe"
            };
            (key, v.trim_ascii())
        } else if let Some((k, v)) = t.split_once(':') {
            (k.trim_ascii(), v.trim_ascii())
        } else {
            ("", t)
        };
        if key == "Current time"
            && !self.date_known
            && let Ok(dt) = NaiveDateTime::parse_from_str(value, "%Y/%m/%d %H:%M:%S")
        {
            self.date = dt.date();
            self.date_known = true;
            self.last = Some(dt);
        }
        let p = ParsedLine {
            timestamp: Timestamp::None,
            text,
            level: Level::Info,
            kind: Kind::Header {
                key: Cow::Borrowed(key),
                value: Cow::Borrowed(value),
            },
        };
        let time = self.current_time();
        self.start(p, time)
    }

    fn continuation(&mut self, text: &str) {
        let Some(cur) = &mut self.cur else {
            // Nothing to continue (e.g. after `flush`): the line stands alone.
            let time = self.current_time();
            let p = parse_line(text);
            self.cur = Some(self.new_pending(p, time));
            return;
        };
        if text.trim_ascii().is_empty() {
            cur.blanks = cur.blanks.saturating_add(1);
            return;
        }
        Self::append(&self.limits, cur, text);
    }

    fn append(limits: &Limits, cur: &mut Pending, text: &str) {
        for _ in 0..std::mem::take(&mut cur.blanks) {
            Self::append_one(limits, cur, "");
        }
        Self::append_one(limits, cur, text);
    }

    fn append_one(limits: &Limits, cur: &mut Pending, text: &str) {
        let e = &mut cur.entry;
        e.line_count = e.line_count.saturating_add(1);
        if cur.dropped_lines > 0
            || e.line_count > limits.max_entry_lines.max(1)
            || e.text.len().saturating_add(1).saturating_add(text.len()) > limits.max_entry_bytes
        {
            cur.dropped_lines = cur.dropped_lines.saturating_add(1);
            e.truncated = true;
            return;
        }
        e.text.push('\n');
        e.text.push_str(text);
    }

    fn new_pending(&self, p: ParsedLine<'_>, time: NaiveDateTime) -> Pending {
        let expr_error = p.text.starts_with("Error in expression");
        let (text, truncated) = truncate_str(p.text, self.limits.max_entry_bytes);
        Pending {
            entry: Entry {
                time,
                date_known: self.date_known,
                level: p.level,
                kind: p.kind.into_owned(),
                text: text.to_owned(),
                line_count: 1,
                truncated,
            },
            blanks: 0,
            dropped_lines: 0,
            expr_error,
        }
    }

    fn start(&mut self, p: ParsedLine<'_>, time: NaiveDateTime) -> Option<Entry> {
        let next = self.new_pending(p, time);
        self.cur.replace(next).map(finish)
    }
}

fn finish(mut p: Pending) -> Entry {
    if p.dropped_lines > 0 {
        let n = p.dropped_lines;
        let s = if n == 1 { "" } else { "s" };
        p.entry
            .text
            .push_str(&format!("\n[... {n} more line{s} truncated]"));
    } else if p.entry.truncated {
        p.entry.text.push_str(" [... truncated]");
    }
    p.entry
}

/// `s` cut to at most `max` bytes at a char boundary; `true` if it was cut.
fn truncate_str(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Lines the engine writes, with their own timestamp, right after `Error in expression <...>`.
fn is_error_tail(text: &str) -> bool {
    let t = text.trim_ascii_start();
    (t.len() < text.len() && t.starts_with("Error "))
        || (text.starts_with("File ") && text.contains(", line "))
}

/// The local start time encoded in a log file name: `arma3server_x64_YYYY-MM-DD_HH-MM-SS.rpt`,
/// also `arma3server_YYYY-...`, `arma3_x64_...` / `arma3_...` (client logs). Directories are
/// ignored, the prefix is matched case-insensitively, any extension is accepted.
///
/// ```
/// use languard_rpt::date_from_file_name;
/// let t = date_from_file_name(r"C:\p\arma3server_x64_2021-10-05_08-38-26.rpt").unwrap();
/// assert_eq!(t.to_string(), "2021-10-05 08:38:26");
/// ```
#[must_use]
pub fn date_from_file_name(name: &str) -> Option<NaiveDateTime> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let rest = ["arma3server_x64_", "arma3server_", "arma3_x64_", "arma3_"]
        .iter()
        .find_map(|p| {
            let head = base.get(..p.len())?;
            head.eq_ignore_ascii_case(p).then(|| &base[p.len()..])
        })?;
    let stamp = rest.get(..19)?;
    let tail = &rest[19..];
    if !(tail.is_empty() || tail.starts_with('.')) {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d_%H-%M-%S").ok()
}

/// Parses a whole log (already decoded, e.g. with `String::from_utf8_lossy`) into entries.
#[must_use]
pub fn parse_log(content: &str, file_start: Option<NaiveDateTime>) -> Vec<Entry> {
    let mut asm = EntryAssembler::new(file_start);
    let mut out: Vec<Entry> = content.lines().filter_map(|l| asm.push(l)).collect();
    out.extend(asm.flush());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn run(asm: &mut EntryAssembler, lines: &[&str]) -> Vec<Entry> {
        let mut out: Vec<Entry> = lines.iter().filter_map(|l| asm.push(l)).collect();
        out.extend(asm.flush());
        out
    }

    #[test]
    fn file_names() {
        assert_eq!(
            date_from_file_name("arma3server_x64_2021-10-05_08-38-26.rpt"),
            Some(dt("2021-10-05 08:38:26"))
        );
        assert_eq!(
            date_from_file_name("/srv/a3/profiles/arma3server_2022-01-31_23-59-59.rpt"),
            Some(dt("2022-01-31 23:59:59"))
        );
        assert_eq!(
            date_from_file_name("Arma3_x64_2021-10-05_08-38-26.txt"),
            Some(dt("2021-10-05 08:38:26"))
        );
        assert_eq!(
            date_from_file_name("ARMA3SERVER_X64_2021-10-05_08-38-26"),
            Some(dt("2021-10-05 08:38:26"))
        );
        for bad in [
            "",
            "server.rpt",
            "arma3server_x64_2021-13-05_08-38-26.rpt",
            "arma3server_x64_2021-10-05_08-38.rpt",
            "arma3server_x64_2021-10-05_08-38-26x.rpt",
            "arma3server_x64_2021-10-05_08-38-2é.rpt",
            "arma3server_x64_",
        ] {
            assert_eq!(date_from_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn rollover_at_midnight() {
        let mut asm = EntryAssembler::new(Some(dt("2021-10-05 23:58:00")));
        let out = run(
            &mut asm,
            &[
                "23:59:58 a",
                "23:59:59 b",
                " 0:00:00 c",
                " 0:00:01 d",
                "23:00:00 e",
                "22:59:00 f",
            ],
        );
        let times: Vec<String> = out.iter().map(|e| e.time.to_string()).collect();
        assert_eq!(
            times,
            [
                "2021-10-05 23:59:58",
                "2021-10-05 23:59:59",
                "2021-10-06 00:00:00",
                "2021-10-06 00:00:01",
                // forward jump stays on the same day, a 1-minute step back is no roll-over
                "2021-10-06 23:00:00",
                "2021-10-06 22:59:00",
            ]
        );
        assert!(out.iter().all(|e| e.date_known));
    }

    #[test]
    fn rollover_from_file_start() {
        // the file was started just before midnight; the first line is after it
        let mut asm = EntryAssembler::new(Some(dt("2021-10-05 23:59:59")));
        let out = run(&mut asm, &[" 0:00:02 x"]);
        assert_eq!(out[0].time, dt("2021-10-06 00:00:02"));
    }

    #[test]
    fn dst_fall_back_is_not_a_new_day() {
        let mut asm = EntryAssembler::new(Some(dt("2021-10-31 02:50:00")));
        let out = run(&mut asm, &[" 2:59:59 a", " 2:00:00 b"]);
        assert_eq!(out[1].time, dt("2021-10-31 02:00:00"));
        let mut asm = EntryAssembler::new(Some(dt("2021-10-31 02:50:00")))
            .with_rollover_threshold(TimeDelta::minutes(30));
        let out = run(&mut asm, &[" 2:59:59 a", " 2:00:00 b"]);
        assert_eq!(out[1].time, dt("2021-11-01 02:00:00"));
    }

    #[test]
    fn full_form_sets_date_for_later_short_lines() {
        let mut asm = EntryAssembler::new(None);
        let out = run(
            &mut asm,
            &[" 8:00:00 a", "2022/03/04, 08:00:01 b", " 8:00:02 c"],
        );
        assert!(!out[0].date_known);
        assert_eq!(out[0].time, dt("1970-01-01 08:00:00"));
        assert!(out[1].date_known && out[2].date_known);
        assert_eq!(out[2].time, dt("2022-03-04 08:00:02"));
    }

    #[test]
    fn header_current_time_supplies_date() {
        let mut asm = EntryAssembler::new(None);
        let out = run(
            &mut asm,
            &["Current time:  2021/10/05 08:38:26", "", " 8:38:27 a"],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].kind,
            Kind::Header {
                key: "Current time".into(),
                value: "2021/10/05 08:38:26".into()
            }
        );
        assert_eq!(out[0].time, dt("2021-10-05 08:38:26"));
        assert!(out[1].date_known);
        assert_eq!(out[1].time, dt("2021-10-05 08:38:27"));
    }

    #[test]
    fn blank_lines_inside_kept_trailing_dropped() {
        let mut asm = EntryAssembler::new(None);
        let out = run(
            &mut asm,
            &[" 1:00:00 a", "b", "", "  ", "c", "", "", " 1:00:01 d", ""],
        );
        assert_eq!(out[0].text, "a\nb\n\n\nc");
        assert_eq!(out[0].line_count, 5);
        assert_eq!(out[1].text, "d");
        assert_eq!(out[1].line_count, 1);
    }

    #[test]
    fn limits_truncate_visibly() {
        let limits = Limits {
            max_entry_lines: 3,
            max_entry_bytes: 1 << 20,
        };
        let mut asm = EntryAssembler::new(None).with_limits(limits);
        let mut lines = vec![" 1:00:00 start"];
        lines.extend(std::iter::repeat_n("more", 10));
        lines.push(" 1:00:01 next");
        let out = run(&mut asm, &lines);
        assert_eq!(
            out[0].text,
            "start\nmore\nmore\n[... 8 more lines truncated]"
        );
        assert_eq!(out[0].line_count, 11);
        assert!(out[0].truncated);
        assert_eq!(out[1].text, "next");
        assert!(!out[1].truncated);

        let limits = Limits {
            max_entry_lines: 100,
            max_entry_bytes: 10,
        };
        let mut asm = EntryAssembler::new(None).with_limits(limits);
        let out = run(&mut asm, &[" 1:00:00 ééééééé", "x"]);
        assert_eq!(out[0].text, "ééééé\n[... 1 more line truncated]");
        assert!(out[0].truncated);
        let mut asm = EntryAssembler::new(None).with_limits(limits);
        let out = run(&mut asm, &[" 1:00:00 ééééééé"]);
        assert_eq!(out[0].text, "ééééé [... truncated]");
    }

    #[test]
    fn continuation_after_flush_stands_alone() {
        let mut asm = EntryAssembler::new(Some(dt("2021-10-05 08:00:00")));
        assert!(asm.push(" 8:00:01 a").is_none());
        let a = asm.flush().unwrap();
        assert_eq!(a.text, "a");
        assert!(asm.push("Error: orphan").is_none());
        let o = asm.flush().unwrap();
        assert_eq!(o.text, "Error: orphan");
        assert_eq!(o.time, dt("2021-10-05 08:00:01"));
        assert_eq!(o.level, Level::Error);
        assert!(asm.flush().is_none());
    }

    #[test]
    fn resume_after_header() {
        let mut asm = EntryAssembler::new(Some(dt("2021-10-05 23:59:00"))).after_header();
        assert!(!asm.in_header());
        let out = run(&mut asm, &["tail of an old entry", " 0:00:05 next"]);
        assert_eq!(out.len(), 2);
        assert!(!out[0].is_header());
        assert_eq!(out[0].text, "tail of an old entry");
        assert_eq!(out[0].time, dt("2021-10-05 23:59:00"));
        assert_eq!(out[1].time, dt("2021-10-06 00:00:05"));
    }

    #[test]
    fn error_tail_merges_only_with_same_time() {
        let mut asm = EntryAssembler::new(None);
        let out = run(
            &mut asm,
            &[
                " 1:00:00 Error in expression <a>",
                " 1:00:00   Error position: <a>",
                " 1:00:00   Error Undefined variable in expression: a",
                " 1:00:00 File x.sqf..., line 3",
                " 1:00:00 File y.sqf..., line 4",
                " 1:00:00 Error in expression <b>",
                " 1:00:01   Error position: <b>",
            ],
        );
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0].text,
            "Error in expression <a>\n  Error position: <a>\n  Error Undefined variable in expression: a\nFile x.sqf..., line 3\nFile y.sqf..., line 4"
        );
        assert_eq!(out[0].line_count, 5);
        assert_eq!(out[2].text, "  Error position: <b>");
    }
}
