//! Hand-written parameter parsing, in the style of the real server: `-key=value` or `-flag`, keys are
//! case-insensitive, unknown real-server parameters are ignored, unknown `-fake*` parameters are an
//! error (they can only be typos in a test).

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// A parameter could not be used. Printed on stderr; the process exits with code 1.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArgError {
    #[error("invalid value {value:?} for parameter -{key}: {why}")]
    BadValue {
        key: String,
        value: String,
        why: &'static str,
    },
    #[error("parameter -{0} needs a value (-{0}=...)")]
    MissingValue(String),
    #[error("unknown fake parameter -{0} (see -fakeHelp)")]
    UnknownFake(String),
}

/// Where the `.rpt` log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTo {
    /// Linux behaviour: the log is written to stdout.
    Stdout,
    /// Windows behaviour: `<profiles>/arma3server_x64_YYYY-MM-DD_HH-MM-SS.rpt`.
    Profiles,
}

/// A signal the fake can raise on itself to "crash".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashSignal {
    Segv,
    Abrt,
    Kill,
}

impl CrashSignal {
    /// Parses `SEGV`, `SIGSEGV`, `11`, `ABRT`, `SIGABRT`, `6`, `KILL`, `SIGKILL`, `9` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        let up = s.trim().to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        match name {
            "SEGV" | "11" => Some(Self::Segv),
            "ABRT" | "6" => Some(Self::Abrt),
            "KILL" | "9" => Some(Self::Kill),
            _ => None,
        }
    }

    pub fn to_nix(self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal;
        match self {
            Self::Segv => Signal::SIGSEGV,
            Self::Abrt => Signal::SIGABRT,
            Self::Kill => Signal::SIGKILL,
        }
    }
}

/// Line ending of the written log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    Crlf,
}

impl LineEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lf => "\n",
            Self::Crlf => "\r\n",
        }
    }
}

/// Everything the command line said, after validation. `Option` fields are resolved against the
/// defaults (plain or `-fakeDemo`) by the accessor methods.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// The command line as given, for the log header.
    pub raw: Vec<String>,
    // Real server parameters.
    pub port: Option<u16>,
    pub ip: Option<Ipv4Addr>,
    pub config: Option<PathBuf>,
    pub cfg: Option<PathBuf>,
    pub profiles: Option<PathBuf>,
    pub name: Option<String>,
    pub mods: Vec<String>,
    pub server_mods: Vec<String>,
    pub bepath: Option<PathBuf>,
    // Fake-only parameters.
    pub help: bool,
    pub log_to: Option<LogTo>,
    pub line_ending: Option<LineEnding>,
    pub crash_after: Option<Duration>,
    pub exit_code: Option<i32>,
    pub crash_signal: Option<CrashSignal>,
    pub hang: bool,
    pub hang_after: Option<Duration>,
    pub exit_after: Option<Duration>,
    pub flood_rate: Option<f64>,
    pub flood_lines: Option<u64>,
    /// Flood lines carry `flood #<n> t=<unix microseconds>` (for loss, order and latency checks).
    pub flood_tagged: bool,
    pub players: Option<Vec<String>>,
    pub join_interval: Option<Duration>,
    pub stay: Option<Duration>,
    pub control: Option<PathBuf>,
    pub demo: bool,
    pub start_delay: Option<Duration>,
    pub load_interval: Option<Duration>,
    pub chatter: Option<Duration>,
}

impl Args {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(2302)
    }
    pub fn ip(&self) -> Ipv4Addr {
        self.ip.unwrap_or(Ipv4Addr::LOCALHOST)
    }
    pub fn log_to(&self) -> LogTo {
        self.log_to.unwrap_or(LogTo::Stdout)
    }
    pub fn line_ending(&self) -> LineEnding {
        self.line_ending.unwrap_or(LineEnding::Lf)
    }
    /// Profiles folder: `-profiles`, else the working directory (the fake never writes into `$HOME`).
    pub fn profiles_dir(&self) -> PathBuf {
        self.profiles.clone().unwrap_or_else(|| PathBuf::from("."))
    }
    /// BattlEye folder: `-bepath`, else `<profiles>/BattlEye`.
    pub fn be_dir(&self) -> PathBuf {
        self.bepath
            .clone()
            .unwrap_or_else(|| self.profiles_dir().join("BattlEye"))
    }
    pub fn control_path(&self) -> PathBuf {
        self.control
            .clone()
            .unwrap_or_else(|| self.profiles_dir().join("fake-control.txt"))
    }
    pub fn players(&self) -> Vec<String> {
        match &self.players {
            Some(p) => p.clone(),
            None if self.demo => ["Kerry", "Miller", "Максим", "Free Style"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            None => Vec::new(),
        }
    }
    pub fn join_interval(&self) -> Duration {
        self.join_interval.unwrap_or(if self.demo {
            Duration::from_secs(8)
        } else {
            Duration::from_secs(2)
        })
    }
    pub fn start_delay(&self) -> Duration {
        self.start_delay.unwrap_or(if self.demo {
            Duration::from_secs(4)
        } else {
            Duration::from_millis(300)
        })
    }
    pub fn load_interval(&self) -> Duration {
        self.load_interval.unwrap_or(if self.demo {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(30)
        })
    }
    /// Interval of replayed runtime lines and (in demo mode) player chat; `None` = off.
    pub fn chatter(&self) -> Option<Duration> {
        match self.chatter {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None if self.demo => Some(Duration::from_secs(3)),
            None => None,
        }
    }
    /// Exit code used by a crash without a signal.
    pub fn crash_exit_code(&self) -> i32 {
        self.exit_code.unwrap_or(1)
    }
}

/// Parses the parameters (without the program name).
pub fn parse(args: &[OsString]) -> Result<Args, ArgError> {
    let mut out = Args::default();
    for os in args {
        let arg = os.to_string_lossy().into_owned();
        out.raw.push(arg.clone());
        // Arguments quoted as a whole ("-mod=@a;@b") arrive without quotes from a shell, but a
        // Windows-style command line passed verbatim may keep them.
        let a = arg.trim();
        let a = a
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(a);
        let Some(body) = a.strip_prefix('-') else {
            // Real server: a bare word is ignored (or taken as a file to open); never an error.
            continue;
        };
        let (key, value) = match body.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (body, None),
        };
        let lower = key.to_ascii_lowercase();
        apply(&mut out, &lower, key, value)?;
    }
    Ok(out)
}

fn need<'a>(key: &str, value: Option<&'a str>) -> Result<&'a str, ArgError> {
    value.ok_or_else(|| ArgError::MissingValue(key.to_string()))
}

fn bad(key: &str, value: &str, why: &'static str) -> ArgError {
    ArgError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        why,
    }
}

fn path(key: &str, value: Option<&str>) -> Result<PathBuf, ArgError> {
    let v = need(key, value)?;
    let v = v.trim_matches('"');
    if v.is_empty() {
        return Err(bad(key, v, "empty path"));
    }
    Ok(PathBuf::from(v))
}

/// Seconds, fractional allowed (`0.5`), not negative, at most a day.
pub fn secs(key: &str, value: Option<&str>) -> Result<Duration, ArgError> {
    let v = need(key, value)?;
    let f: f64 = v
        .trim()
        .parse()
        .map_err(|_| bad(key, v, "expected a number of seconds"))?;
    if !f.is_finite() || !(0.0..=86_400.0).contains(&f) {
        return Err(bad(key, v, "seconds must be between 0 and 86400"));
    }
    Ok(Duration::from_secs_f64(f))
}

fn mod_list(value: &str) -> Vec<String> {
    value
        .trim_matches('"')
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn flag(key: &str, value: Option<&str>) -> Result<bool, ArgError> {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(true),
        Some(v) if v == "1" || v == "true" => Ok(true),
        Some(v) if v == "0" || v == "false" => Ok(false),
        Some(v) => Err(bad(key, &v, "expected no value, 0/1 or true/false")),
    }
}

fn apply(out: &mut Args, lower: &str, key: &str, value: Option<&str>) -> Result<(), ArgError> {
    match lower {
        "port" => {
            let v = need(key, value)?;
            let p: u16 = v
                .trim()
                .parse()
                .map_err(|_| bad(key, v, "expected a port number 1-65535"))?;
            if p == 0 {
                return Err(bad(key, v, "expected a port number 1-65535"));
            }
            out.port = Some(p);
        }
        "ip" => {
            let v = need(key, value)?;
            let ip: Ipv4Addr = v
                .trim()
                .parse()
                .map_err(|_| bad(key, v, "expected an IPv4 address"))?;
            out.ip = Some(ip);
        }
        "config" => out.config = Some(path(key, value)?),
        "cfg" => out.cfg = Some(path(key, value)?),
        "profiles" => out.profiles = Some(path(key, value)?),
        "bepath" => out.bepath = Some(path(key, value)?),
        "name" => out.name = Some(need(key, value)?.trim_matches('"').to_string()),
        "mod" => out.mods = mod_list(need(key, value)?),
        "servermod" => out.server_mods = mod_list(need(key, value)?),

        "fakehelp" => out.help = flag(key, value)?,
        "fakelogto" => {
            let v = need(key, value)?;
            out.log_to = Some(match v.trim().to_ascii_lowercase().as_str() {
                "stdout" => LogTo::Stdout,
                "profiles" => LogTo::Profiles,
                _ => return Err(bad(key, v, "expected stdout or profiles")),
            });
        }
        "fakelineending" => {
            let v = need(key, value)?;
            out.line_ending = Some(match v.trim().to_ascii_lowercase().as_str() {
                "lf" => LineEnding::Lf,
                "crlf" => LineEnding::Crlf,
                _ => return Err(bad(key, v, "expected lf or crlf")),
            });
        }
        "fakecrashafter" => out.crash_after = Some(secs(key, value)?),
        "fakeexitcode" => {
            let v = need(key, value)?;
            let c: i32 = v
                .trim()
                .parse()
                .map_err(|_| bad(key, v, "expected an exit code 0-255"))?;
            if !(0..=255).contains(&c) {
                return Err(bad(key, v, "expected an exit code 0-255"));
            }
            out.exit_code = Some(c);
        }
        "fakecrashsignal" => {
            let v = need(key, value)?;
            out.crash_signal = Some(
                CrashSignal::parse(v).ok_or_else(|| bad(key, v, "expected SEGV, ABRT or KILL"))?,
            );
        }
        "fakehang" => out.hang = flag(key, value)?,
        "fakehangafter" => out.hang_after = Some(secs(key, value)?),
        "fakeexitafter" => out.exit_after = Some(secs(key, value)?),
        "fakefloodrate" => {
            let v = need(key, value)?;
            let r: f64 = v
                .trim()
                .parse()
                .map_err(|_| bad(key, v, "expected lines per second"))?;
            if !r.is_finite() || !(0.0..=1_000_000.0).contains(&r) {
                return Err(bad(
                    key,
                    v,
                    "lines per second must be between 0 and 1000000",
                ));
            }
            out.flood_rate = Some(r);
        }
        "fakefloodlines" => {
            let v = need(key, value)?;
            out.flood_lines = Some(
                v.trim()
                    .parse()
                    .map_err(|_| bad(key, v, "expected a number of lines"))?,
            );
        }
        "fakefloodtagged" => out.flood_tagged = flag(key, value)?,
        "fakeplayers" => {
            let v = need(key, value)?;
            out.players = Some(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        "fakejoininterval" => out.join_interval = Some(secs(key, value)?),
        "fakestay" => out.stay = Some(secs(key, value)?),
        "fakecontrol" => out.control = Some(path(key, value)?),
        "fakedemo" => out.demo = flag(key, value)?,
        "fakestartdelay" => out.start_delay = Some(secs(key, value)?),
        "fakeloadinterval" => {
            let d = secs(key, value)?;
            if d < Duration::from_millis(100) {
                return Err(bad(key, value.unwrap_or(""), "at least 0.1 seconds"));
            }
            out.load_interval = Some(d);
        }
        "fakechatter" => out.chatter = Some(secs(key, value)?),
        other if other.starts_with("fake") => return Err(ArgError::UnknownFake(key.to_string())),
        // Everything else (-world=empty, -autoInit, -limitFPS=50, -loadMissionToMemory, -filePatching,
        // -MaxMem=..., -nosplash, ...) is accepted and ignored, like the real server ignores what it
        // does not know.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(v: &[&str]) -> Result<Args, ArgError> {
        let v: Vec<OsString> = v.iter().map(OsString::from).collect();
        parse(&v)
    }

    #[test]
    fn real_parameters_and_unknown_ones() {
        let a = p(&[
            "-PORT=2402",
            "-config=srv/server.cfg",
            "-cfg=srv/basic.cfg",
            "-profiles=prof",
            "-name=server",
            "\"-mod=@ace;@CBA_A3;\"",
            "-serverMod=@c",
            "-bepath=be",
            "-world=empty",
            "-autoInit",
            "-limitFPS=50",
            "stray",
        ])
        .unwrap();
        assert_eq!(a.port(), 2402);
        assert_eq!(a.config, Some(PathBuf::from("srv/server.cfg")));
        assert_eq!(a.profiles_dir(), PathBuf::from("prof"));
        assert_eq!(a.name.as_deref(), Some("server"));
        assert_eq!(a.mods, vec!["@ace", "@CBA_A3"]);
        assert_eq!(a.server_mods, vec!["@c"]);
        assert_eq!(a.be_dir(), PathBuf::from("be"));
        assert_eq!(a.raw.len(), 12);
    }

    #[test]
    fn defaults() {
        let a = p(&[]).unwrap();
        assert_eq!(a.port(), 2302);
        assert_eq!(a.log_to(), LogTo::Stdout);
        assert_eq!(a.be_dir(), PathBuf::from("./BattlEye"));
        assert_eq!(a.control_path(), PathBuf::from("./fake-control.txt"));
        assert!(a.players().is_empty());
        assert!(a.chatter().is_none());
        let d = p(&["-fakeDemo"]).unwrap();
        assert_eq!(d.players().len(), 4);
        assert!(d.chatter().is_some());
        let d = p(&["-fakeDemo", "-fakePlayers=A,B"]).unwrap();
        assert_eq!(d.players(), vec!["A", "B"]);
    }

    #[test]
    fn fake_parameters() {
        let a = p(&[
            "-fakeLogTo=PROFILES",
            "-fakeCrashAfter=0.5",
            "-fakeExitCode=3",
            "-fakeCrashSignal=sigsegv",
            "-fakehang",
            "-fakeFloodRate=1000",
            "-fakeFloodLines=20",
            "-fakePlayers=A, B ,,C",
            "-fakeStay=2",
        ])
        .unwrap();
        assert_eq!(a.log_to(), LogTo::Profiles);
        assert_eq!(a.crash_after, Some(Duration::from_millis(500)));
        assert_eq!(a.crash_exit_code(), 3);
        assert_eq!(a.crash_signal, Some(CrashSignal::Segv));
        assert!(a.hang);
        assert_eq!(a.flood_rate, Some(1000.0));
        assert_eq!(a.flood_lines, Some(20));
        assert_eq!(a.players(), vec!["A", "B", "C"]);
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        for bad in [
            "-port=abc",
            "-port=0",
            "-port=70000",
            "-port",
            "-ip=nowhere",
            "-fakeCrashAfter=-1",
            "-fakeCrashAfter=NaN",
            "-fakeCrashAfter=inf",
            "-fakeExitCode=300",
            "-fakeCrashSignal=HUP",
            "-fakeLogTo=file",
            "-fakeFloodRate=x",
            "-fakeNoSuchThing",
            "-fakeHang=maybe",
            "-profiles=",
        ] {
            assert!(p(&[bad]).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn crash_signal_names() {
        assert_eq!(CrashSignal::parse("ABRT"), Some(CrashSignal::Abrt));
        assert_eq!(CrashSignal::parse("9"), Some(CrashSignal::Kill));
        assert_eq!(CrashSignal::parse("SIGkill"), Some(CrashSignal::Kill));
        assert_eq!(CrashSignal::parse(""), None);
    }
}
