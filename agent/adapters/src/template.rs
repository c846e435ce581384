//! Argument templates of declared adapters: text with `{placeholder}`s, checked when the adapter
//! is loaded and filled in for each server. `{{` and `}}` stand for literal braces.
//!
//! Placeholders: `{server.id}`, `{server.name}`, `{executable}`, `{executable_dir}`,
//! `{working_dir}`, `{log_dir}`, `{rcon_port}` and `{settings.NAME}` (a server setting the adapter declares).

use std::collections::BTreeMap;

use crate::AdapterError;

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// `{server.id}`.
    ServerId,
    /// `{server.name}`.
    ServerName,
    /// `{executable}`.
    Executable,
    /// `{executable_dir}`.
    ExecutableDir,
    /// `{working_dir}`.
    WorkingDir,
    /// `{log_dir}` (not allowed in the log dir template itself).
    LogDir,
    /// `{rcon_port}` (the server's RCon port; 0 without RCon).
    RconPort,
    /// `{settings.NAME}`.
    Setting(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The values placeholders stand for.
pub struct Values<'a> {
    /// `{server.id}`.
    pub server_id: i64,
    /// `{server.name}`.
    pub server_name: &'a str,
    /// `{executable}`.
    pub executable: &'a str,
    /// `{executable_dir}`.
    pub executable_dir: &'a str,
    /// `{working_dir}`.
    pub working_dir: &'a str,
    /// `{log_dir}`.
    pub log_dir: &'a str,
    /// `{rcon_port}`.
    pub rcon_port: i32,
    /// The server's settings.
    pub settings: &'a std::collections::HashMap<String, String>,
}

fn var_of(name: &str) -> Option<Var> {
    Some(match name {
        "server.id" => Var::ServerId,
        "server.name" => Var::ServerName,
        "executable" => Var::Executable,
        "executable_dir" => Var::ExecutableDir,
        "working_dir" => Var::WorkingDir,
        "log_dir" => Var::LogDir,
        "rcon_port" => Var::RconPort,
        _ => {
            let s = name.strip_prefix("settings.")?;
            if !valid_setting_name(s) {
                return None;
            }
            Var::Setting(s.to_owned())
        }
    })
}

/// Whether `s` can name a setting: 1-64 letters, digits, `_` or `-`.
pub fn valid_setting_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Template {
    /// Parses `text`; unknown placeholders and unbalanced braces are errors.
    pub fn parse(text: &str) -> Result<Self, AdapterError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => name.push(ch),
                            None => {
                                return Err(AdapterError(format!(
                                    "{text:?}: '{{' without a closing '}}' (write '{{{{' for a literal brace)"
                                )));
                            }
                        }
                    }
                    let var = var_of(name.trim()).ok_or_else(|| {
                        AdapterError(format!(
                            "{text:?}: unknown placeholder {{{name}}}; known: {{server.id}}, {{server.name}}, \
                             {{executable}}, {{executable_dir}}, {{working_dir}}, {{log_dir}}, {{rcon_port}}, {{settings.NAME}}"
                        ))
                    })?;
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(var));
                }
                '}' => {
                    return Err(AdapterError(format!(
                        "{text:?}: '}}' without an opening '{{' (write '}}}}' for a literal brace)"
                    )));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Self { parts })
    }

    /// The placeholders used.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Text(_) => None,
        })
    }

    /// Fills the template in. A setting the server does not have becomes the empty string (the
    /// adapter's required settings are checked before this).
    pub fn render(&self, v: &Values<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(var) => match var {
                    Var::ServerId => out.push_str(&v.server_id.to_string()),
                    Var::ServerName => out.push_str(v.server_name),
                    Var::Executable => out.push_str(v.executable),
                    Var::ExecutableDir => out.push_str(v.executable_dir),
                    Var::WorkingDir => out.push_str(v.working_dir),
                    Var::LogDir => out.push_str(v.log_dir),
                    Var::RconPort => out.push_str(&v.rcon_port.to_string()),
                    Var::Setting(name) => {
                        out.push_str(v.settings.get(name).map_or("", String::as_str));
                    }
                },
            }
        }
        out
    }
}

/// Settings referenced by templates, for error messages and checks.
pub fn settings_used<'a>(ts: impl IntoIterator<Item = &'a Template>) -> BTreeMap<String, ()> {
    ts.into_iter()
        .flat_map(|t| t.vars())
        .filter_map(|v| match v {
            Var::Setting(s) => Some((s.clone(), ())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let t =
            Template::parse("--port={settings.port} {{x}} {server.name}#{server.id}").expect("ok");
        let settings = HashMap::from([("port".to_owned(), "2302".to_owned())]);
        let v = Values {
            server_id: 7,
            server_name: "main",
            executable: "/srv/x/run",
            executable_dir: "/srv/x",
            working_dir: "/srv/x",
            log_dir: "/srv/x/logs",
            rcon_port: 0,
            settings: &settings,
        };
        assert_eq!(t.render(&v), "--port=2302 {x} main#7");
        assert_eq!(
            settings_used([&t]).keys().cloned().collect::<Vec<_>>(),
            vec!["port".to_owned()]
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (t, want) in [
            ("{nope}", "unknown placeholder {nope}"),
            ("{settings.}", "unknown placeholder"),
            ("{settings.a b}", "unknown placeholder"),
            ("open {server.id", "without a closing"),
            ("close }", "without an opening"),
        ] {
            let e = Template::parse(t).expect_err(t);
            assert!(e.0.contains(want), "{t}: {e}");
        }
    }
}
