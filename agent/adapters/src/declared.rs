//! Adapters declared in TOML, for games without a built-in adapter. A definition names the
//! argument template, the settings a server must or may give, where the log is and how its lines
//! look (a regex with named groups), how to stop the game gracefully, and its RCon protocol if any.
//! Every part is checked when the file is loaded; errors name the file and the field.
//!
//! ```toml
//! name = "generic-process"            # [a-z0-9_-], 1-32 characters; not a built-in name
//! display_name = "Generic process"
//!
//! [process]
//! args = ["--port={settings.port}", "--log-dir={log_dir}"]
//! env = { GAME_NAME = "{server.name}" }
//!
//! [settings]
//! required = ["port"]
//! optional = ["motd"]
//!
//! [log]
//! dir = "{working_dir}/logs"          # default: the working dir
//! stdout_file = "console"             # the agent writes stdout to console_<date>.log there
//! files = ["console_*.log"]           # default: the stdout files
//! regex = '^(?P<time>\S+ \S+) \[(?P<level>\w+)\] (?P<text>.*)$'
//! time_format = "%Y-%m-%d %H:%M:%S"
//! unmatched = "append"                # or "entry" (the default)
//!
//! [stop]
//! signal = "SIGINT"                   # default SIGTERM; SIGKILL follows after the stop timeout
//! command = ["{executable_dir}/stop.sh"]
//!
//! [ports]
//! game = "port"                       # which settings hold ports (checked, no clashes on a node)
//!
//! [rcon]                              # optional: a game speaking BattlEye RCon
//! protocol = "battleye"
//! stop_command = "#shutdown"
//! config_dir = "{working_dir}/battleye"   # BEServer_x64.cfg with the port and password
//! ```

use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use languard_proto::v1 as pb;
use languard_rpt::LogTimeZone;
use regex::Regex;
use serde::Deserialize;

use crate::check::{self, PortUse, SpecError};
use crate::parse::{LogParser, RegexParser, Unmatched};
use crate::template::{Template, Values, Var, valid_setting_name};
use crate::{AdapterError, GameAdapter, Launch, LogFiles, RconProtocol, StopStep, signal_number};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    process: ProcessSection,
    #[serde(default)]
    settings: SettingsSection,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    stop: StopSection,
    #[serde(default)]
    rcon: Option<RconSection>,
    #[serde(default)]
    ports: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessSection {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsSection {
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    optional: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    dir: Option<String>,
    stdout_file: Option<String>,
    #[serde(default)]
    files: Vec<String>,
    regex: Option<String>,
    time_format: Option<String>,
    time_zone: Option<String>,
    unmatched: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StopSection {
    signal: Option<String>,
    #[serde(default)]
    command: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RconSection {
    protocol: String,
    stop_command: Option<String>,
    config_dir: Option<String>,
}

/// A loaded, checked declared adapter.
#[derive(Debug)]
pub struct Declared {
    name: String,
    display_name: String,
    source: String,
    text: String,
    args: Vec<Template>,
    env: Vec<(String, Template)>,
    required: Vec<String>,
    optional: Vec<String>,
    log_dir: Option<Template>,
    stdout_prefix: String,
    files: Vec<String>,
    regex: Regex,
    time_format: Option<String>,
    time_zone: Option<LogTimeZone>,
    unmatched: Unmatched,
    stop_signal: i32,
    stop_command: Vec<Template>,
    rcon: Option<(RconProtocol, Option<String>)>,
    /// Where the BattlEye RCon config (with the server's RCon port and password) is written before
    /// each start.
    rcon_config_dir: Option<Template>,
    ports: BTreeMap<String, String>,
}

fn err(source: &str, msg: impl std::fmt::Display) -> AdapterError {
    AdapterError(format!("{source}: {msg}"))
}

/// Whether `s` is a valid adapter name.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_file_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl Declared {
    /// Parses and checks a definition; `source` names it in errors (a file path).
    pub fn parse(text: &str, source: &str) -> Result<Self, AdapterError> {
        let f: File = toml::from_str(text).map_err(|e| err(source, e.to_string().trim_end()))?;
        if !valid_name(&f.name) {
            return Err(err(
                source,
                format!(
                    "name {:?}: use 1-32 characters of a-z, 0-9, '_' or '-'",
                    f.name
                ),
            ));
        }
        let mut declared: Vec<String> = Vec::new();
        for s in f.settings.required.iter().chain(&f.settings.optional) {
            if !valid_setting_name(s) {
                return Err(err(
                    source,
                    format!(
                        "settings: {s:?} is not a valid setting name (letters, digits, '_', '-')"
                    ),
                ));
            }
            if declared.contains(s) {
                return Err(err(source, format!("settings: {s:?} is listed twice")));
            }
            declared.push(s.clone());
        }
        let check = |t: &Template, field: &str, log_dir_ok: bool| -> Result<(), AdapterError> {
            for v in t.vars() {
                match v {
                    Var::Setting(s) if !declared.contains(s) => {
                        return Err(err(
                            source,
                            format!(
                                "{field}: {{settings.{s}}} is not declared in [settings] required or optional"
                            ),
                        ));
                    }
                    Var::LogDir if !log_dir_ok => {
                        return Err(err(
                            source,
                            format!("{field}: {{log_dir}} cannot be used here"),
                        ));
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        let tpl = |text: &str, field: &str, log_dir_ok: bool| -> Result<Template, AdapterError> {
            let t = Template::parse(text).map_err(|e| err(source, format!("{field}: {e}")))?;
            check(&t, field, log_dir_ok)?;
            Ok(t)
        };
        let args = f
            .process
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| tpl(a, &format!("process.args[{i}]"), true))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env = Vec::new();
        for (k, v) in &f.process.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(err(
                    source,
                    format!("process.env: {k:?} is not a variable name"),
                ));
            }
            env.push((k.clone(), tpl(v, &format!("process.env.{k}"), true)?));
        }
        let log_dir = f
            .log
            .dir
            .as_deref()
            .map(|d| tpl(d, "log.dir", false))
            .transpose()?;
        let stdout_prefix = f.log.stdout_file.clone().unwrap_or_else(|| f.name.clone());
        if !valid_file_part(&stdout_prefix) {
            return Err(err(
                source,
                format!("log.stdout_file {stdout_prefix:?}: use letters, digits, '.', '_' or '-'"),
            ));
        }
        let files = if f.log.files.is_empty() {
            vec![format!("{stdout_prefix}_*.log")]
        } else {
            for p in &f.log.files {
                if p.is_empty() || p.contains('/') {
                    return Err(err(
                        source,
                        format!("log.files: {p:?} must be a file-name pattern without '/'"),
                    ));
                }
            }
            f.log.files.clone()
        };
        let regex = Regex::new(f.log.regex.as_deref().unwrap_or(r"^(?P<text>.*)$"))
            .map_err(|e| err(source, format!("log.regex: {e}")))?;
        let names: Vec<&str> = regex.capture_names().flatten().collect();
        for n in &names {
            if !["text", "time", "level", "kind"].contains(n) {
                return Err(err(
                    source,
                    format!("log.regex: unknown group (?P<{n}>); use text, time, level, kind"),
                ));
            }
        }
        match (&f.log.time_format, names.contains(&"time")) {
            (Some(_), false) => {
                return Err(err(
                    source,
                    "log.time_format is set but log.regex has no (?P<time>) group",
                ));
            }
            (None, true) => {
                return Err(err(
                    source,
                    "log.regex has a (?P<time>) group: set log.time_format",
                ));
            }
            _ => {}
        }
        if let Some(fmt) = &f.log.time_format {
            // A format chrono cannot use fails on every line; find out now.
            let probe = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                .and_then(|d| d.and_hms_opt(3, 4, 5))
                .ok_or_else(|| err(source, "internal: probe date"))?;
            let mut rendered = String::new();
            use std::fmt::Write;
            if write!(rendered, "{}", probe.format(fmt)).is_err() {
                return Err(err(
                    source,
                    format!("log.time_format {fmt:?} is not a valid strftime format"),
                ));
            }
            if chrono::NaiveDateTime::parse_from_str(&rendered, fmt).is_err() {
                return Err(err(
                    source,
                    format!(
                        "log.time_format {fmt:?} must contain a full date and time (e.g. %Y-%m-%d %H:%M:%S)"
                    ),
                ));
            }
        }
        let time_zone = f
            .log
            .time_zone
            .as_deref()
            .map(|tz| {
                tz.parse::<LogTimeZone>()
                    .map_err(|_| err(source, format!("log.time_zone {tz:?}: unknown time zone")))
            })
            .transpose()?;
        let unmatched = match f.log.unmatched.as_deref() {
            None | Some("entry") => Unmatched::Entry,
            Some("append") => Unmatched::Append,
            Some(o) => {
                return Err(err(
                    source,
                    format!("log.unmatched {o:?}: use \"entry\" or \"append\""),
                ));
            }
        };
        let stop_signal = match &f.stop.signal {
            None => 15,
            Some(s) => signal_number(s).ok_or_else(|| {
                err(
                    source,
                    format!("stop.signal {s:?}: use SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 or SIGUSR2"),
                )
            })?,
        };
        let stop_command = f
            .stop
            .command
            .iter()
            .enumerate()
            .map(|(i, a)| tpl(a, &format!("stop.command[{i}]"), true))
            .collect::<Result<Vec<_>, _>>()?;
        let rcon = match &f.rcon {
            None => None,
            Some(r) if r.protocol.eq_ignore_ascii_case("battleye") => {
                Some((RconProtocol::BattlEye, r.stop_command.clone()))
            }
            Some(r) => {
                return Err(err(
                    source,
                    format!(
                        "rcon.protocol {:?}: the agent speaks \"battleye\"",
                        r.protocol
                    ),
                ));
            }
        };
        let rcon_config_dir = f
            .rcon
            .as_ref()
            .and_then(|r| r.config_dir.as_deref())
            .map(|d| tpl(d, "rcon.config_dir", true))
            .transpose()?;
        for (port, setting) in &f.ports {
            if !declared.contains(setting) {
                return Err(err(
                    source,
                    format!("ports.{port}: setting {setting:?} is not declared in [settings]"),
                ));
            }
        }
        Ok(Self {
            display_name: if f.display_name.is_empty() {
                f.name.clone()
            } else {
                f.display_name.clone()
            },
            name: f.name,
            source: source.to_owned(),
            text: text.to_owned(),
            args,
            env,
            required: f.settings.required,
            optional: f.settings.optional,
            log_dir,
            stdout_prefix,
            files,
            regex,
            time_format: f.log.time_format,
            time_zone,
            unmatched,
            stop_signal,
            stop_command,
            rcon,
            rcon_config_dir,
            ports: f.ports,
        })
    }

    /// The adapter's name (its game type).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The TOML text it was parsed from (shipped to agents inside server specs).
    pub fn text(&self) -> &str {
        &self.text
    }

    fn cwd(spec: &pb::ServerSpec) -> PathBuf {
        if spec.working_dir.is_empty() {
            Path::new(&spec.executable_path)
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
        } else {
            PathBuf::from(&spec.working_dir)
        }
    }

    fn dirs(&self, spec: &pb::ServerSpec) -> (PathBuf, PathBuf, PathBuf) {
        let exe_dir = Path::new(&spec.executable_path)
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let cwd = Self::cwd(spec);
        let log_dir = match &self.log_dir {
            None => cwd.clone(),
            Some(t) => {
                let v = Values {
                    server_id: spec.server_id,
                    server_name: &spec.name,
                    executable: &spec.executable_path,
                    executable_dir: &exe_dir.to_string_lossy(),
                    working_dir: &cwd.to_string_lossy(),
                    log_dir: "",
                    rcon_port: spec.rcon_port,
                    settings: &spec.settings,
                };
                let p = PathBuf::from(t.render(&v));
                if p.is_absolute() { p } else { cwd.join(p) }
            }
        };
        (exe_dir, cwd, log_dir)
    }

    fn render_all(&self, spec: &pb::ServerSpec, ts: &[Template]) -> Vec<String> {
        let (exe_dir, cwd, log_dir) = self.dirs(spec);
        let v = Values {
            server_id: spec.server_id,
            server_name: &spec.name,
            executable: &spec.executable_path,
            executable_dir: &exe_dir.to_string_lossy(),
            working_dir: &cwd.to_string_lossy(),
            log_dir: &log_dir.to_string_lossy(),
            rcon_port: spec.rcon_port,
            settings: &spec.settings,
        };
        ts.iter().map(|t| t.render(&v)).collect()
    }
}

/// Checks one setting value: at most 4096 bytes, no control characters.
pub fn check_setting_value(name: &str, value: &str) -> Result<(), SpecError> {
    let field = format!("server.settings.{name}");
    if value.len() > 4096 {
        return Err(SpecError::new(field, "longer than 4096 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(SpecError::new(field, "control characters are not allowed"));
    }
    Ok(())
}

impl GameAdapter for Declared {
    fn info(&self) -> pb::GameType {
        let mut stop = Vec::new();
        if let Some((_, Some(c))) = &self.rcon {
            stop.push(format!("rcon {c}"));
        }
        if !self.stop_command.is_empty() {
            stop.push("command".to_owned());
        }
        stop.push(format!("signal {}", crate::signal_name(self.stop_signal)));
        pb::GameType {
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            source: self.source.clone(),
            has_rcon: self.rcon.is_some(),
            rcon_protocol: if self.rcon.is_some() {
                "battleye".into()
            } else {
                String::new()
            },
            log_format: "regex".into(),
            log_file_globs: self.files.clone(),
            stop_sequence: stop,
            settings: self
                .required
                .iter()
                .chain(&self.optional)
                .cloned()
                .collect(),
            required_settings: self.required.clone(),
            ports: self
                .ports
                .iter()
                .map(|(k, v)| format!("{k}: settings.{v}"))
                .collect(),
        }
    }

    fn validate(&self, spec: &pb::ServerSpec) -> Result<(), SpecError> {
        check::abs_path("server.executable_path", &spec.executable_path, true)?;
        if spec
            .arma3
            .as_ref()
            .is_some_and(|a| *a != pb::Arma3Settings::default())
        {
            return Err(SpecError::new(
                "server.arma3",
                format!("only for the arma3 adapter, not {:?}", self.name),
            ));
        }
        let mut names: Vec<&String> = spec.settings.keys().collect();
        names.sort();
        for name in names {
            if !self.required.contains(name) && !self.optional.contains(name) {
                let takes: Vec<String> = self
                    .required
                    .iter()
                    .chain(&self.optional)
                    .cloned()
                    .collect();
                return Err(SpecError::new(
                    "server.settings",
                    format!(
                        "{name:?} is not used by the {} adapter; it takes: {}",
                        self.name,
                        takes.join(", ")
                    ),
                ));
            }
            check_setting_value(name, &spec.settings[name])?;
        }
        for r in &self.required {
            if spec.settings.get(r).is_none_or(|v| v.is_empty()) {
                return Err(SpecError::new(
                    "server.settings",
                    format!("{r:?} is required by the {} adapter", self.name),
                ));
            }
        }
        for setting in self.ports.values() {
            if let Some(v) = spec.settings.get(setting).filter(|v| !v.is_empty()) {
                let field = format!("server.settings.{setting}");
                let n: i64 = v.trim().parse().map_err(|_| {
                    SpecError::new(field.clone(), format!("{v:?} is not a port number"))
                })?;
                check::port(&field, n)?;
            }
        }
        if spec.rcon_port != 0 {
            check::port("server.rcon_port", i64::from(spec.rcon_port))?;
            if self.rcon.is_none() {
                return Err(SpecError::new(
                    "server.rcon_port",
                    format!("the {} adapter has no RCon; leave it 0", self.name),
                ));
            }
        }
        Ok(())
    }

    fn ports(&self, spec: &pb::ServerSpec) -> Vec<PortUse> {
        let mut v: Vec<PortUse> = self
            .ports
            .values()
            .filter_map(|setting| {
                let p: u16 = spec.settings.get(setting)?.trim().parse().ok()?;
                Some(PortUse {
                    field: format!("server.settings.{setting}"),
                    first: p,
                    last: p,
                })
            })
            .collect();
        if let Ok(p) = u16::try_from(spec.rcon_port)
            && p != 0
        {
            v.push(PortUse {
                field: "server.rcon_port".into(),
                first: p,
                last: p,
            });
        }
        v
    }

    fn launch(&self, spec: &pb::ServerSpec) -> Result<Launch, AdapterError> {
        self.validate(spec)?;
        let (_, cwd, log_dir) = self.dirs(spec);
        let args = self.render_all(spec, &self.args);
        let env_values = self.render_all(
            spec,
            &self.env.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
        );
        let env = self
            .env
            .iter()
            .map(|(k, _)| k.clone())
            .zip(env_values)
            .collect();
        Ok(Launch {
            program: PathBuf::from(&spec.executable_path),
            args,
            cwd,
            env,
            log_dir,
            stdout_prefix: format!("{}_", self.stdout_prefix),
            stdout_suffix: ".log".into(),
        })
    }

    fn prepare(&self, spec: &pb::ServerSpec, launch: &Launch) -> Result<(), AdapterError> {
        std::fs::create_dir_all(&launch.log_dir)
            .map_err(|e| AdapterError(format!("log dir {}: {e}", launch.log_dir.display())))?;
        if let Some(t) = &self.rcon_config_dir
            && spec.rcon_port > 0
        {
            let dir = self
                .render_all(spec, std::slice::from_ref(t))
                .pop()
                .unwrap_or_default();
            let dir = launch.cwd.join(dir);
            crate::arma3::write_battleye_config(&dir, spec.rcon_port, &spec.rcon_password)
                .map_err(|e| {
                    AdapterError(format!(
                        "cannot write the BattlEye config in {}: {e}",
                        dir.display()
                    ))
                })?;
        }
        Ok(())
    }

    fn log_files(&self, spec: &pb::ServerSpec) -> Result<LogFiles, AdapterError> {
        Ok(LogFiles {
            dir: self.dirs(spec).2,
            patterns: self.files.clone(),
        })
    }

    fn log_parser(&self, _spec: &pb::ServerSpec, default_tz: LogTimeZone) -> Box<dyn LogParser> {
        let tz = self.time_zone.unwrap_or(default_tz);
        Box::new(RegexParser::new(
            self.regex.clone(),
            self.time_format.clone(),
            tz,
            self.unmatched,
        ))
    }

    fn rcon(&self, spec: &pb::ServerSpec) -> Option<RconProtocol> {
        self.rcon
            .as_ref()
            .filter(|_| spec.rcon_port > 0)
            .map(|(p, _)| *p)
    }

    fn stop_sequence(&self, spec: &pb::ServerSpec) -> Vec<StopStep> {
        let mut v = Vec::new();
        if let Some((_, Some(c))) = &self.rcon
            && spec.rcon_port > 0
        {
            v.push(StopStep::Rcon(c.clone()));
        }
        if !self.stop_command.is_empty() {
            v.push(StopStep::Command(self.render_all(spec, &self.stop_command)));
        }
        v.push(StopStep::Signal(self.stop_signal));
        v
    }
}

#[cfg(test)]
fn settings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "generic-process"
display_name = "Generic process"

[process]
args = ["--port={settings.port}", "--log-dir={log_dir}", "--name={server.name}"]
env = { GAME_ID = "{server.id}" }

[settings]
required = ["port"]
optional = ["motd"]

[log]
dir = "{working_dir}/logs"
stdout_file = "console"
regex = '^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<text>.*)$'
time_format = "%Y-%m-%d %H:%M:%S"
time_zone = "UTC"
unmatched = "append"

[stop]
signal = "SIGINT"

[ports]
game = "port"
"#;

    fn spec() -> pb::ServerSpec {
        pb::ServerSpec {
            server_id: 4,
            name: "alpha".into(),
            game_type: "generic-process".into(),
            executable_path: "/srv/game/run".into(),
            settings: settings(&[("port", "27015")]),
            ..Default::default()
        }
    }

    #[test]
    fn a_definition_builds_argv_env_logs_and_stop() {
        let d = Declared::parse(EXAMPLE, "generic.toml").expect("valid");
        let l = d.launch(&spec()).expect("launch");
        assert_eq!(
            l.args,
            vec!["--port=27015", "--log-dir=/srv/game/logs", "--name=alpha"]
        );
        assert_eq!(l.env, vec![("GAME_ID".to_owned(), "4".to_owned())]);
        assert_eq!(l.log_dir, PathBuf::from("/srv/game/logs"));
        assert_eq!(l.stdout_prefix, "console_");
        let files = d.log_files(&spec()).expect("files");
        assert_eq!(files.patterns, vec!["console_*.log"]);
        assert_eq!(d.stop_sequence(&spec()), vec![StopStep::Signal(2)]);
        let info = d.info();
        assert_eq!(info.required_settings, vec!["port"]);
        assert_eq!(info.settings, vec!["port", "motd"]);
        assert_eq!(info.stop_sequence, vec!["signal SIGINT"]);
        assert!(!info.has_rcon);
    }

    #[test]
    fn server_settings_are_checked_against_the_definition() {
        let d = Declared::parse(EXAMPLE, "generic.toml").expect("valid");
        let mut s = spec();
        s.settings.clear();
        assert!(
            d.validate(&s)
                .expect_err("missing")
                .reason
                .contains("\"port\" is required")
        );
        s.settings = settings(&[("port", "1"), ("colour", "red")]);
        assert!(
            d.validate(&s)
                .expect_err("unknown")
                .reason
                .contains("\"colour\" is not used")
        );
        s.settings = settings(&[("port", "1\n2")]);
        assert!(
            d.validate(&s)
                .expect_err("control")
                .reason
                .contains("control characters")
        );
    }

    #[test]
    fn a_battleye_game_gets_its_rcon_port_and_config() {
        let def = r##"
name = "be-game"
[process]
args = ["-rcon={rcon_port}"]
[rcon]
protocol = "battleye"
stop_command = "#shutdown"
config_dir = "{working_dir}/be"
"##;
        let d = Declared::parse(def, "be.toml").expect("valid");
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = pb::ServerSpec {
            server_id: 1,
            name: "b".into(),
            game_type: "be-game".into(),
            executable_path: dir.path().join("run").display().to_string(),
            rcon_port: 2400,
            rcon_password: "pw".into(),
            ..Default::default()
        };
        d.validate(&spec).expect("rcon allowed");
        let l = d.launch(&spec).expect("launch");
        assert_eq!(l.args, vec!["-rcon=2400"]);
        d.prepare(&spec, &l).expect("prepare");
        let cfg = std::fs::read_to_string(dir.path().join("be/beserver_x64.cfg")).expect("cfg");
        assert!(
            cfg.contains("RConPassword pw") && cfg.contains("RConPort 2400"),
            "{cfg}"
        );
        assert_eq!(d.rcon(&spec), Some(RconProtocol::BattlEye));
        assert_eq!(
            d.stop_sequence(&spec),
            vec![StopStep::Rcon("#shutdown".into()), StopStep::Signal(15)]
        );
        assert!(d.info().has_rcon);
    }

    #[test]
    fn broken_definitions_name_the_file_and_field() {
        let cases = [
            ("name = \"Bad Name\"", "name \"Bad Name\""),
            ("name = \"x\"\nbogus = 1", "unknown field"),
            (
                "name = \"x\"\n[process]\nargs = [\"{settings.port}\"]",
                "not declared",
            ),
            (
                "name = \"x\"\n[process]\nargs = [\"{what}\"]",
                "unknown placeholder",
            ),
            ("name = \"x\"\n[log]\nregex = \"(\"", "log.regex"),
            (
                "name = \"x\"\n[log]\nregex = \"(?P<when>.*)\"",
                "unknown group",
            ),
            (
                "name = \"x\"\n[log]\nregex = \"(?P<time>.*)\"",
                "set log.time_format",
            ),
            (
                "name = \"x\"\n[log]\nregex = \"(?P<time>.*)\"\ntime_format = \"%H\"",
                "full date",
            ),
            ("name = \"x\"\n[stop]\nsignal = \"SIGKILL\"", "stop.signal"),
            (
                "name = \"x\"\n[rcon]\nprotocol = \"source\"",
                "rcon.protocol",
            ),
            (
                "name = \"x\"\n[log]\ndir = \"{log_dir}\"",
                "cannot be used here",
            ),
            ("name = \"x\"\n[ports]\ngame = \"port\"", "ports.game"),
            ("not toml at all [", "bad.toml"),
        ];
        for (text, want) in cases {
            let e = Declared::parse(text, "bad.toml").expect_err(text);
            assert!(e.0.starts_with("bad.toml: "), "{e}");
            assert!(e.0.contains(want), "{text:?}: {e}");
        }
    }
}
