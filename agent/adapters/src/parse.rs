//! Log line parsers: turn the lines of a log file into entries (time, level, kind, text). A parser
//! may hold an entry back until it knows no continuation line follows; the caller flushes it after
//! a short idle time and at the end of a file.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use languard_proto::v1 as pb;
use languard_rpt::{Entry, EntryAssembler, Kind, Level, LogTimeZone};
use regex::Regex;

/// One parsed log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEntry {
    /// When it was written, in UTC.
    pub time: DateTime<Utc>,
    /// Its level.
    pub level: pb::LogLevel,
    /// Its structured kind (e.g. `player_connected`, `other`, `line`).
    pub kind: String,
    /// Its text, continuation lines joined with `\n`.
    pub text: String,
}

/// Turns lines into entries.
pub trait LogParser: Send {
    /// A new file starts (its name may carry the date of its first lines).
    fn start_file(&mut self, path: &Path);
    /// The next line (without its line ending); returns an entry that is complete now.
    fn push(&mut self, line: &str) -> Option<ParsedEntry>;
    /// Returns the entry held back, if any.
    fn flush(&mut self) -> Option<ParsedEntry>;
}

/// The stored name of an `.rpt` entry kind.
pub fn rpt_kind_name(k: &Kind<'_>) -> &'static str {
    match k {
        Kind::Header { .. } => "header",
        Kind::PlayerConnected { .. } => "player_connected",
        Kind::PlayerDisconnected { .. } => "player_disconnected",
        Kind::MissionRead { .. } => "mission_read",
        Kind::MissionStarted => "mission_started",
        Kind::MissionFinished => "mission_finished",
        Kind::BattlEye { .. } => "battleye",
        Kind::ServerLoad(_) => "server_load",
        Kind::HostIdentity => "host_identity",
        Kind::Other => "other",
    }
}

fn level_of(l: Level) -> pb::LogLevel {
    match l {
        Level::Info => pb::LogLevel::Info,
        Level::Warning => pb::LogLevel::Warning,
        Level::Error => pb::LogLevel::Error,
    }
}

/// The Arma 3 `.rpt` parser (`languard-rpt`): header block, both timestamp forms, continuation
/// lines, dates from the file name with midnight roll-over.
pub struct RptParser {
    tz: LogTimeZone,
    assembler: EntryAssembler,
}

impl RptParser {
    /// A parser for logs written in `tz`.
    pub fn new(tz: LogTimeZone) -> Self {
        Self {
            tz,
            assembler: EntryAssembler::new(None),
        }
    }

    fn entry(&self, e: Entry) -> ParsedEntry {
        ParsedEntry {
            time: e.time_utc(&self.tz),
            level: level_of(e.level),
            kind: rpt_kind_name(&e.kind).to_owned(),
            text: e.text,
        }
    }
}

impl LogParser for RptParser {
    fn start_file(&mut self, path: &Path) {
        let start: Option<NaiveDateTime> = path
            .file_name()
            .and_then(|n| languard_rpt::date_from_file_name(&n.to_string_lossy()));
        self.assembler = EntryAssembler::new(start);
    }

    fn push(&mut self, line: &str) -> Option<ParsedEntry> {
        self.assembler.push(line).map(|e| self.entry(e))
    }

    fn flush(&mut self) -> Option<ParsedEntry> {
        self.assembler.flush().map(|e| self.entry(e))
    }
}

/// How lines that do not match the regex are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// Each becomes an entry of its own (kind `line`, level inferred from the text).
    Entry,
    /// Each is appended to the entry before it (stack traces, multi-line messages).
    Append,
}

/// A line regex from a declared adapter. Named groups: `text` (the message; the whole line when
/// absent), `time` (parsed with `time_format` in the server's time zone; the receipt time when
/// absent or unparsable), `level` (`error`/`err`/`fatal`/`severe`/`critical`, `warn`/`warning`,
/// anything else is info; inferred from the text when absent), `kind` (stored as the entry kind;
/// `line` when absent).
pub struct RegexParser {
    re: Regex,
    time_format: Option<String>,
    tz: LogTimeZone,
    unmatched: Unmatched,
    pending: Option<ParsedEntry>,
    max_entry_bytes: usize,
}

impl RegexParser {
    /// A parser; `re` was validated when the adapter was loaded.
    pub fn new(
        re: Regex,
        time_format: Option<String>,
        tz: LogTimeZone,
        unmatched: Unmatched,
    ) -> Self {
        Self {
            re,
            time_format,
            tz,
            unmatched,
            pending: None,
            max_entry_bytes: 64 * 1024,
        }
    }

    fn level_from(word: &str) -> pb::LogLevel {
        match word.trim().to_ascii_lowercase().as_str() {
            "error" | "err" | "fatal" | "severe" | "critical" | "crit" | "e" => pb::LogLevel::Error,
            "warn" | "warning" | "w" => pb::LogLevel::Warning,
            _ => pb::LogLevel::Info,
        }
    }

    fn parse(&self, line: &str) -> Option<ParsedEntry> {
        let caps = self.re.captures(line)?;
        let text = caps.name("text").map_or(line, |m| m.as_str()).to_owned();
        let time = match (caps.name("time"), &self.time_format) {
            (Some(t), Some(fmt)) => NaiveDateTime::parse_from_str(t.as_str().trim(), fmt)
                .ok()
                .map(|local| self.tz.to_utc(local)),
            _ => None,
        }
        .unwrap_or_else(Utc::now);
        let level = caps.name("level").map_or_else(
            || level_of(languard_rpt::infer_level(&text)),
            |m| Self::level_from(m.as_str()),
        );
        let kind = caps.name("kind").map_or("line", |m| m.as_str()).to_owned();
        Some(ParsedEntry {
            time,
            level,
            kind,
            text,
        })
    }

    fn plain(line: &str) -> ParsedEntry {
        ParsedEntry {
            time: Utc::now(),
            level: level_of(languard_rpt::infer_level(line)),
            kind: "line".into(),
            text: line.to_owned(),
        }
    }
}

impl LogParser for RegexParser {
    fn start_file(&mut self, _path: &Path) {}

    fn push(&mut self, line: &str) -> Option<ParsedEntry> {
        if let Some(e) = self.parse(line) {
            return self.pending.replace(e);
        }
        match self.unmatched {
            Unmatched::Entry => self.pending.replace(Self::plain(line)),
            Unmatched::Append => match &mut self.pending {
                Some(p) if p.text.len() + line.len() < self.max_entry_bytes => {
                    p.text.push('\n');
                    p.text.push_str(line);
                    None
                }
                _ => self.pending.replace(Self::plain(line)),
            },
        }
    }

    fn flush(&mut self) -> Option<ParsedEntry> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(unmatched: Unmatched) -> RegexParser {
        let re = Regex::new(
            r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?:(?P<kind>join|leave): )?(?P<text>.*)$",
        )
        .expect("regex");
        RegexParser::new(
            re,
            Some("%Y-%m-%d %H:%M:%S".into()),
            LogTimeZone::Utc,
            unmatched,
        )
    }

    fn all(p: &mut dyn LogParser, lines: &[&str]) -> Vec<ParsedEntry> {
        let mut out: Vec<_> = lines.iter().filter_map(|l| p.push(l)).collect();
        out.extend(p.flush());
        out
    }

    #[test]
    fn regex_lines_become_entries_with_time_level_and_kind() {
        let mut p = parser(Unmatched::Entry);
        let out = all(
            &mut p,
            &[
                "2026-12-03 10:00:01 [INFO] server up",
                "2026-12-03 10:00:02 [WARN] join: Alice",
                "2026-12-03 10:00:03 [ERROR] disk full",
                "garbage without a timestamp",
            ],
        );
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].text, "server up");
        assert_eq!(out[0].time.to_rfc3339(), "2026-12-03T10:00:01+00:00");
        assert_eq!(out[0].kind, "line");
        assert_eq!(out[1].level, pb::LogLevel::Warning);
        assert_eq!(out[1].kind, "join");
        assert_eq!(out[1].text, "Alice");
        assert_eq!(out[2].level, pb::LogLevel::Error);
        assert_eq!(out[3].text, "garbage without a timestamp");
        assert_eq!(out[3].kind, "line");
    }

    #[test]
    fn unmatched_lines_can_continue_the_entry_before() {
        let mut p = parser(Unmatched::Append);
        let out = all(
            &mut p,
            &[
                "2026-12-03 10:00:03 [ERROR] crash",
                "  at frame 1",
                "  at frame 2",
                "2026-12-03 10:00:04 [INFO] next",
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].text, "crash\n  at frame 1\n  at frame 2");
        assert_eq!(out[1].text, "next");
    }

    #[test]
    fn rpt_parser_uses_the_file_date() {
        let mut p = RptParser::new(LogTimeZone::Utc);
        p.start_file(Path::new("/x/arma3server_x64_2021-10-05_08-38-50.rpt"));
        let out = all(
            &mut p,
            &[" 8:38:52 Game started.", " 8:38:53 Game finished."],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].time.to_rfc3339(), "2021-10-05T08:38:52+00:00");
        assert_eq!(out[0].kind, "mission_started");
        assert_eq!(out[1].kind, "mission_finished");
    }
}
