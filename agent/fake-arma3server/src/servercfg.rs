//! The few `server.cfg` entries the fake uses: `hostname`, `timeStampFormat`, `BattlEye` and the
//! mission `template`. Anything else is ignored; a missing or unreadable file gives the defaults.

use crate::rpt::Stamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCfg {
    pub hostname: String,
    /// Timestamp form after the config is loaded (default `full`).
    pub stamp: Stamp,
    pub battleye: bool,
    /// Mission file name without `.pbo`, e.g. `Antistasi-Takistan-2-5-3.takistan`.
    pub template: String,
}

impl Default for ServerCfg {
    fn default() -> Self {
        Self {
            hostname: "Languard fake Arma 3 server".into(),
            stamp: Stamp::Full,
            battleye: true,
            template: "Antistasi-Takistan-2-5-3.takistan".into(),
        }
    }
}

impl ServerCfg {
    /// `(mission name, world)` from the template.
    pub fn mission(&self) -> (&str, &str) {
        self.template
            .rsplit_once('.')
            .unwrap_or((self.template.as_str(), "takistan"))
    }
}

/// The value of `key = value;` (quotes and the semicolon removed).
fn value(line: &str) -> Option<(String, String)> {
    let (k, v) = line.split_once('=')?;
    let v = v.trim().trim_end_matches(';').trim().trim_matches('"');
    Some((k.trim().to_ascii_lowercase(), v.to_string()))
}

pub fn parse(text: &str) -> ServerCfg {
    let mut c = ServerCfg::default();
    let mut template_seen = false;
    for raw in text.lines() {
        let line = raw.split("//").next().unwrap_or("").trim();
        let Some((k, v)) = value(line) else { continue };
        match k.as_str() {
            "hostname" => c.hostname = v,
            "timestampformat" => {
                if let Some(s) = Stamp::parse(&v) {
                    c.stamp = s;
                }
            }
            "battleye" => c.battleye = v.trim() != "0",
            "template" if !template_seen && !v.is_empty() => {
                c.template = v;
                template_seen = true;
            }
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_used_entries() {
        let c = parse(
            "hostname = \"My \"\"Server\";\n\
             timeStampFormat = \"short\"; // comment\n\
             BattlEye = 0;\n\
             class Missions {\n class M1 {\n  template = \"MP_Test.Altis\";\n  difficulty = \"Regular\";\n };\n class M2 { template = Other.Stratis; };\n};\n",
        );
        assert_eq!(c.stamp, Stamp::Short);
        assert!(!c.battleye);
        assert_eq!(c.mission(), ("MP_Test", "Altis"));
        assert_eq!(parse("").stamp, Stamp::Full);
        assert_eq!(parse("timeStampFormat=\"none\";").stamp, Stamp::None);
        assert_eq!(parse("timeStampFormat=\"weird\";").stamp, Stamp::Full);
        assert_eq!(
            parse("garbage ==== ;;").hostname,
            ServerCfg::default().hostname
        );
    }
}
