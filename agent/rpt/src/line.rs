//! The pure, allocation-free line classifier.

use std::borrow::Cow;
use std::sync::LazyLock;

use chrono::{NaiveDate, NaiveTime};
use memchr::memmem::Finder;

/// The timestamp a line starts with.
///
/// Arma 3 writes either the short form `" 9:12:14 text"` (hour padded with a space to two columns)
/// or, once `timeStampFormat = "full"` from `server.cfg` is in force, `"2021/10/05, 08:38:52 text"`.
/// Both can appear in one file. There are no milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timestamp {
    /// No (valid) timestamp: a header line, a continuation line, or garbage.
    None,
    /// `" H:MM:SS"` / `"HH:MM:SS"`: time of day only; the date comes from context.
    Short {
        /// Hour, `0..=23`.
        h: u8,
        /// Minute, `0..=59`.
        m: u8,
        /// Second, `0..=59`.
        s: u8,
    },
    /// `"YYYY/MM/DD, HH:MM:SS"`: a complete local date and time.
    Full {
        /// Local calendar date.
        date: NaiveDate,
        /// Local time of day.
        time: NaiveTime,
    },
}

impl Timestamp {
    /// `true` unless this is [`Timestamp::None`].
    #[must_use]
    pub fn is_some(&self) -> bool {
        !matches!(self, Timestamp::None)
    }

    /// The time of day, if any.
    #[must_use]
    pub fn time(&self) -> Option<NaiveTime> {
        match *self {
            Timestamp::None => None,
            Timestamp::Short { h, m, s } => {
                NaiveTime::from_hms_opt(u32::from(h), u32::from(m), u32::from(s))
            }
            Timestamp::Full { time, .. } => Some(time),
        }
    }
}

/// Severity, inferred from the message text (the `.rpt` format has no level field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// Everything that is neither a warning nor an error.
    #[default]
    Info,
    /// `Warning Message:`, `Warning:`, `WARNING`, mod tags such as `[CBA] (xeh) WARNING:`,
    /// Antistasi's `| Warning |`.
    Warning,
    /// `Error in expression`, `Error:`, `Error position:`, `Server error:`, `ERROR`, mod tags such as
    /// `(xeh) ERROR:`, Antistasi's `| Error |`, `] Error:` inside quoted script logs.
    Error,
}

impl Level {
    /// Lower-case name: `"info"`, `"warning"`, `"error"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The figures of a `Server load: FPS 50, memory used: 1052 MB, out: 0 Kbps, in: 0 Kbps, ...,
/// Players: 3 (...)` line (the output of the `#monitor` command).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServerLoad {
    /// Server simulation frames per second.
    pub fps: f32,
    /// Memory used, in MB.
    pub memory_mb: u32,
    /// Outgoing bandwidth in Kbps, if present.
    pub out_kbps: Option<u32>,
    /// Incoming bandwidth in Kbps, if present.
    pub in_kbps: Option<u32>,
    /// Number of players, if present.
    pub players: Option<u32>,
}

/// What a line (or entry) is about. Borrowed from the line by [`parse_line`]; entries from the
/// [`EntryAssembler`](crate::EntryAssembler) hold the owned form `Kind<'static>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'a> {
    /// A line of the header block at the top of the file (only produced by the assembler).
    /// `key` is the part before the first `:` (`"Version"`, `"Current time"`, ...), `"exe"` for the
    /// first `== ` line, `"command_line"` for the following `== ` line(s), `""` when there is none.
    Header {
        /// Field name.
        key: Cow<'a, str>,
        /// Field value, trimmed.
        value: Cow<'a, str>,
    },
    /// `Player <name> connected (id=<id>).` (or `Player <name> connected.`).
    PlayerConnected {
        /// Player name as written (may contain spaces and non-ASCII).
        name: Cow<'a, str>,
        /// The id in parentheses (the Steam UID on current servers), if present.
        id: Option<Cow<'a, str>>,
    },
    /// `Player <name> disconnected.`
    PlayerDisconnected {
        /// Player name as written.
        name: Cow<'a, str>,
    },
    /// `Mission <x> read from bank.`
    MissionRead {
        /// Mission name, e.g. `Antistasi.Altis`.
        mission: Cow<'a, str>,
    },
    /// `Starting mission:` (loading begins) or `Game started.` (play begins).
    MissionStarted,
    /// `Game finished.`
    MissionFinished,
    /// `BattlEye Server: ...`
    BattlEye {
        /// Everything after `BattlEye Server:`, trimmed.
        message: Cow<'a, str>,
    },
    /// `Server load: FPS <n>, memory used: <n> MB, ...`
    ServerLoad(ServerLoad),
    /// `Host identity created.`
    HostIdentity,
    /// Anything else.
    Other,
}

impl Kind<'_> {
    /// Copies borrowed data so the kind no longer borrows the line.
    #[must_use]
    pub fn into_owned(self) -> Kind<'static> {
        fn own(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        match self {
            Kind::Header { key, value } => Kind::Header {
                key: own(key),
                value: own(value),
            },
            Kind::PlayerConnected { name, id } => Kind::PlayerConnected {
                name: own(name),
                id: id.map(own),
            },
            Kind::PlayerDisconnected { name } => Kind::PlayerDisconnected { name: own(name) },
            Kind::MissionRead { mission } => Kind::MissionRead {
                mission: own(mission),
            },
            Kind::MissionStarted => Kind::MissionStarted,
            Kind::MissionFinished => Kind::MissionFinished,
            Kind::BattlEye { message } => Kind::BattlEye {
                message: own(message),
            },
            Kind::ServerLoad(l) => Kind::ServerLoad(l),
            Kind::HostIdentity => Kind::HostIdentity,
            Kind::Other => Kind::Other,
        }
    }

    /// For [`Kind::PlayerConnected`]: the id as a 64-bit Steam id, when it is one
    /// (17 digits starting with `7656119`).
    #[must_use]
    pub fn steam_id(&self) -> Option<u64> {
        match self {
            Kind::PlayerConnected { id: Some(id), .. }
                if id.len() == 17
                    && id.starts_with("7656119")
                    && id.bytes().all(|b| b.is_ascii_digit()) =>
            {
                id.parse().ok()
            }
            _ => None,
        }
    }
}

/// One classified line. Produced by [`parse_line`]; borrows the input.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine<'a> {
    /// The leading timestamp, if any.
    pub timestamp: Timestamp,
    /// The message: the line without trailing `\r`/`\n`, leading BOM, timestamp and the single
    /// space after the timestamp (further indentation is kept). The whole line when there is no
    /// timestamp. Always a substring of the input.
    pub text: &'a str,
    /// Severity inferred from `text`.
    pub level: Level,
    /// Structured meaning of `text`.
    pub kind: Kind<'a>,
}

/// Classifies one line of an `.rpt` log. Pure, never panics, never allocates.
///
/// The line may still end in `\n` or `\r\n`; both are stripped, as is a leading UTF-8 BOM.
/// Invalid timestamps (`25:00:00`, `2021/02/30, ...`) are not timestamps: the line is then treated
/// as text without one.
///
/// ```
/// use languard_rpt::{parse_line, Kind, Level, Timestamp};
/// let p = parse_line(" 9:12:14 Player Jo connected (id=76561198000000001).\r");
/// assert_eq!(p.timestamp, Timestamp::Short { h: 9, m: 12, s: 14 });
/// assert_eq!(p.level, Level::Info);
/// assert!(matches!(p.kind, Kind::PlayerConnected { ref name, .. } if name == "Jo"));
/// ```
#[must_use]
pub fn parse_line(line: &str) -> ParsedLine<'_> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let (timestamp, text) = split_timestamp(line);
    ParsedLine {
        timestamp,
        text,
        level: infer_level(text),
        kind: classify(text),
    }
}

#[inline]
fn digit(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b - b'0')
}

#[inline]
fn two(b: &[u8], i: usize) -> Option<u8> {
    Some(digit(*b.get(i)?)? * 10 + digit(*b.get(i + 1)?)?)
}

/// Splits the timestamp off a line (already stripped of EOL). Returns `Timestamp::None` and the
/// whole line when there is no valid timestamp.
fn split_timestamp(line: &str) -> (Timestamp, &str) {
    let b = line.as_bytes();
    // The timestamp must be followed by one space or the end of the line.
    let rest_at = |n: usize| -> Option<&str> {
        match b.get(n) {
            None => line.get(n..),
            Some(b' ') => line.get(n + 1..),
            Some(_) => None,
        }
    };
    if b.len() >= 20 && b[4] == b'/' {
        if let Some((ts, text)) = full_timestamp(b).and_then(|ts| Some((ts, rest_at(20)?))) {
            return (ts, text);
        }
        return (Timestamp::None, line);
    }
    if b.len() >= 8
        && b[2] == b':'
        && let Some((ts, text)) = short_timestamp(b).and_then(|ts| Some((ts, rest_at(8)?)))
    {
        return (ts, text);
    }
    (Timestamp::None, line)
}

fn short_timestamp(b: &[u8]) -> Option<Timestamp> {
    let h = match b.first()? {
        b' ' => digit(*b.get(1)?)?,
        _ => two(b, 0)?,
    };
    if b.get(5) != Some(&b':') {
        return None;
    }
    let m = two(b, 3)?;
    let s = two(b, 6)?;
    (h < 24 && m < 60 && s < 60).then_some(Timestamp::Short { h, m, s })
}

fn full_timestamp(b: &[u8]) -> Option<Timestamp> {
    if b.get(7) != Some(&b'/')
        || b.get(10) != Some(&b',')
        || b.get(11) != Some(&b' ')
        || b.get(14) != Some(&b':')
        || b.get(17) != Some(&b':')
    {
        return None;
    }
    let year = i32::from(two(b, 0)?) * 100 + i32::from(two(b, 2)?);
    let month = two(b, 5)?;
    let day = two(b, 8)?;
    let h = two(b, 12)?;
    let m = two(b, 15)?;
    let s = two(b, 18)?;
    let date = NaiveDate::from_ymd_opt(year, u32::from(month), u32::from(day))?;
    let time = NaiveTime::from_hms_opt(u32::from(h), u32::from(m), u32::from(s))?;
    Some(Timestamp::Full { date, time })
}

/// `b` starts with `word` and the next byte (if any) is not a letter.
#[inline]
fn word_prefix(b: &[u8], word: &[u8]) -> bool {
    b.starts_with(word) && b.get(word.len()).is_none_or(|c| !c.is_ascii_alphabetic())
}

struct Needles {
    error: [Finder<'static>; 3],
    warning: [Finder<'static>; 3],
}

static NEEDLES: LazyLock<Needles> = LazyLock::new(|| Needles {
    error: [
        Finder::new(b"ERROR:"),
        Finder::new(b"| Error |"),
        Finder::new(b"] Error:"),
    ],
    warning: [
        Finder::new(b"WARNING:"),
        Finder::new(b"| Warning |"),
        Finder::new(b"] Warning:"),
    ],
});

/// Infers the severity of a message.
#[must_use]
pub fn infer_level(text: &str) -> Level {
    let b = text.trim_ascii_start().as_bytes();
    match b.first() {
        Some(b'E') if word_prefix(b, b"Error") || b.starts_with(b"ERROR") => return Level::Error,
        Some(b'S') if b.starts_with(b"Server error") => return Level::Error,
        Some(b'W') if word_prefix(b, b"Warning") || b.starts_with(b"WARNING") => {
            return Level::Warning;
        }
        _ => {}
    }
    // Tags embedded further in: mod loggers (`[CBA] (xeh) WARNING: ...`), Antistasi
    // (`... | Antistasi | Error | ...`), BIS_fnc_log (`"...: [fnc] Error: ..."`).
    // All needles are at least 6 bytes long and contain `:` or `|`.
    if b.len() < 6 || memchr::memchr2(b':', b'|', b).is_none() {
        return Level::Info;
    }
    let n = &*NEEDLES;
    if n.error.iter().any(|f| f.find(b).is_some()) {
        Level::Error
    } else if n.warning.iter().any(|f| f.find(b).is_some()) {
        Level::Warning
    } else {
        Level::Info
    }
}

/// Classifies a message (the text after the timestamp) into a [`Kind`]. Never returns
/// [`Kind::Header`].
#[must_use]
pub fn classify(text: &str) -> Kind<'_> {
    let t = text.trim_ascii();
    match t.as_bytes().first() {
        Some(b'P') => classify_player(t),
        Some(b'M') => t
            .strip_prefix("Mission ")
            .and_then(|r| r.strip_suffix(" read from bank."))
            .filter(|m| !m.is_empty())
            .map_or(Kind::Other, |m| Kind::MissionRead {
                mission: Cow::Borrowed(m),
            }),
        Some(b'S') => {
            if t.starts_with("Starting mission:") {
                Kind::MissionStarted
            } else if let Some(r) = t.strip_prefix("Server load:") {
                parse_server_load(r).map_or(Kind::Other, Kind::ServerLoad)
            } else {
                Kind::Other
            }
        }
        Some(b'G') => match t {
            "Game started." => Kind::MissionStarted,
            "Game finished." => Kind::MissionFinished,
            _ => Kind::Other,
        },
        Some(b'B') => t
            .strip_prefix("BattlEye Server:")
            .map_or(Kind::Other, |m| Kind::BattlEye {
                message: Cow::Borrowed(m.trim_ascii()),
            }),
        Some(b'H') if t == "Host identity created." => Kind::HostIdentity,
        _ => Kind::Other,
    }
}

fn classify_player(t: &str) -> Kind<'_> {
    let Some(rest) = t.strip_prefix("Player ") else {
        return Kind::Other;
    };
    if let Some(name) = rest.strip_suffix(" disconnected.") {
        if !name.is_empty() {
            return Kind::PlayerDisconnected {
                name: Cow::Borrowed(name),
            };
        }
        return Kind::Other;
    }
    if let Some(inner) = rest.strip_suffix(").") {
        const MARK: &str = " connected (id=";
        if let Some(i) = inner.rfind(MARK) {
            let name = &inner[..i];
            let id = &inner[i + MARK.len()..];
            if !name.is_empty() {
                return Kind::PlayerConnected {
                    name: Cow::Borrowed(name),
                    id: (!id.is_empty()).then_some(Cow::Borrowed(id)),
                };
            }
        }
        return Kind::Other;
    }
    match rest.strip_suffix(" connected.") {
        Some(name) if !name.is_empty() => Kind::PlayerConnected {
            name: Cow::Borrowed(name),
            id: None,
        },
        _ => Kind::Other,
    }
}

/// Leading unsigned integer of `s` (after spaces), saturating.
fn leading_u32(s: &str) -> Option<u32> {
    let s = s.trim_ascii_start();
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return None;
    }
    Some(
        s[..end]
            .parse::<u64>()
            .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX)),
    )
}

/// Leading decimal number of `s` (after spaces).
fn leading_f32(s: &str) -> Option<f32> {
    let s = s.trim_ascii_start();
    let end = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let v: f32 = s.get(..end)?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Parses what follows `Server load:`. FPS and memory are required.
fn parse_server_load(r: &str) -> Option<ServerLoad> {
    let mut fps = None;
    let mut memory_mb = None;
    let mut load = ServerLoad::default();
    for part in r.split(',') {
        let part = part.trim_ascii();
        if let Some(v) = part.strip_prefix("FPS") {
            fps = leading_f32(v);
        } else if let Some(v) = part.strip_prefix("memory used:") {
            memory_mb = leading_u32(v);
        } else if let Some(v) = part.strip_prefix("out:") {
            load.out_kbps = leading_u32(v);
        } else if let Some(v) = part.strip_prefix("in:") {
            load.in_kbps = leading_u32(v);
        } else if let Some(v) = part.strip_prefix("Players:") {
            load.players = leading_u32(v);
        }
    }
    load.fps = fps?;
    load.memory_mb = memory_mb?;
    Some(load)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn short_timestamp_forms() {
        let p = parse_line(" 8:38:26 Initializing stats manager.");
        assert_eq!(p.timestamp, Timestamp::Short { h: 8, m: 38, s: 26 });
        assert_eq!(p.text, "Initializing stats manager.");
        let p = parse_line("23:59:59 x");
        assert_eq!(
            p.timestamp,
            Timestamp::Short {
                h: 23,
                m: 59,
                s: 59
            }
        );
        assert_eq!(p.text, "x");
        // invalid values are not timestamps
        for l in [
            "24:00:00 x",
            " 9:60:00 x",
            " 9:00:60 x",
            "9:00:00 x",
            " 9:00:0 x",
            " 9:00:00x",
        ] {
            let p = parse_line(l);
            assert_eq!(p.timestamp, Timestamp::None, "{l}");
            assert_eq!(p.text, l);
        }
    }

    #[test]
    fn full_timestamp_forms() {
        let p = parse_line("2021/10/05, 08:38:52 Connected to Steam servers");
        assert_eq!(
            p.timestamp,
            Timestamp::Full {
                date: NaiveDate::from_ymd_opt(2021, 10, 5).unwrap(),
                time: NaiveTime::from_hms_opt(8, 38, 52).unwrap(),
            }
        );
        assert_eq!(p.text, "Connected to Steam servers");
        for l in [
            "2021/02/30, 08:38:52 x",
            "2021/10/05, 24:38:52 x",
            "2021/10/05 08:38:52 x",
            "2021-10-05, 08:38:52 x",
            "2021/10/05, 08:38:52x",
        ] {
            assert_eq!(parse_line(l).timestamp, Timestamp::None, "{l}");
        }
    }

    #[test]
    fn levels() {
        assert_eq!(infer_level("Error in expression <a>"), Level::Error);
        assert_eq!(infer_level("  Error position: <x>"), Level::Error);
        assert_eq!(infer_level("Error: foo"), Level::Error);
        assert_eq!(infer_level("ERROR something"), Level::Error);
        assert_eq!(
            infer_level("Server error: Player without identity"),
            Level::Error
        );
        assert_eq!(infer_level("[CBA] (xeh) ERROR: x"), Level::Error);
        assert_eq!(infer_level("1 | Antistasi | Error | File: x"), Level::Error);
        assert_eq!(infer_level("Warning Message: x"), Level::Warning);
        assert_eq!(infer_level("Warning: x"), Level::Warning);
        assert_eq!(infer_level("[CBA] (xeh) WARNING: Car"), Level::Warning);
        assert_eq!(infer_level("Errors are fun"), Level::Info);
        assert_eq!(infer_level("Warnings"), Level::Info);
        assert_eq!(infer_level("[CBA] (xeh) INFO: x"), Level::Info);
        assert_eq!(infer_level(""), Level::Info);
    }

    #[test]
    fn kinds() {
        assert_eq!(
            classify("Player Big Jo (2) connected (id=76561198000000001)."),
            Kind::PlayerConnected {
                name: "Big Jo (2)".into(),
                id: Some("76561198000000001".into())
            }
        );
        assert_eq!(
            classify("Player Jo connected (id=76561198000000001).").steam_id(),
            Some(76_561_198_000_000_001)
        );
        assert_eq!(classify("Player Jo connected (id=123).").steam_id(), None);
        assert_eq!(
            classify("Player Jo connected."),
            Kind::PlayerConnected {
                name: "Jo".into(),
                id: None
            }
        );
        assert_eq!(
            classify("Player Jo disconnected."),
            Kind::PlayerDisconnected { name: "Jo".into() }
        );
        assert_eq!(classify("Player disconnected."), Kind::Other);
        assert_eq!(classify("Player  connected (id=1)."), Kind::Other);
        assert_eq!(
            classify("Player without identity Savvyy (id 532592899)"),
            Kind::Other
        );
        assert_eq!(
            classify("Mission Antistasi.Altis read from bank."),
            Kind::MissionRead {
                mission: "Antistasi.Altis".into()
            }
        );
        assert_eq!(classify("Mission  read from bank."), Kind::Other);
        assert_eq!(classify("Starting mission:"), Kind::MissionStarted);
        assert_eq!(classify("Game started."), Kind::MissionStarted);
        assert_eq!(classify("Game finished."), Kind::MissionFinished);
        assert_eq!(classify("Host identity created."), Kind::HostIdentity);
        assert_eq!(
            classify("BattlEye Server: Initialized (v1.217)"),
            Kind::BattlEye {
                message: "Initialized (v1.217)".into()
            }
        );
        assert_eq!(
            classify(
                "Server load: FPS 49, memory used: 1052 MB, out: 12 Kbps, in: 3 Kbps, NG:0, G:5, BE-NG:0, BE-G:0, Players: 3 (L:0, R:0, B:0, G:3, D:0)"
            ),
            Kind::ServerLoad(ServerLoad {
                fps: 49.0,
                memory_mb: 1052,
                out_kbps: Some(12),
                in_kbps: Some(3),
                players: Some(3)
            })
        );
        assert_eq!(
            classify("Server load: FPS 12.5, memory used: 7 MB"),
            Kind::ServerLoad(ServerLoad {
                fps: 12.5,
                memory_mb: 7,
                ..ServerLoad::default()
            })
        );
        assert_eq!(
            classify("Server load: FPS x, memory used: 7 MB"),
            Kind::Other
        );
        assert_eq!(classify("Server load: FPS 5"), Kind::Other);
        assert_eq!(
            classify("Server load: FPS 5, memory used: 99999999999 MB").clone(),
            Kind::ServerLoad(ServerLoad {
                fps: 5.0,
                memory_mb: u32::MAX,
                ..ServerLoad::default()
            })
        );
    }

    #[test]
    fn into_owned_keeps_data() {
        let line = String::from("Player Jo connected (id=76561198000000001).");
        let owned = classify(&line).into_owned();
        drop(line);
        assert_eq!(
            owned,
            Kind::PlayerConnected {
                name: "Jo".into(),
                id: Some("76561198000000001".into())
            }
        );
    }
}
