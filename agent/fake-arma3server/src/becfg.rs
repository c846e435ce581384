//! BattlEye server config: `BEServer_x64.cfg` / `beserver_x64.cfg` in the BattlEye folder, copied at
//! start to `beserver_x64_active_<random hex>.cfg`; only that copy is read.
//!
//! Like the real BattlEye (see ARMA3.md), a stale `*_active_*` copy left by an earlier run wins over
//! the edited base file: its content is what gets copied and read. A manager that does not delete
//! stale copies before a start therefore sees its config edits ignored, as with the real server.
//! The fake deletes its own active copy on a clean exit and leaves it after a crash.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const BASE_NAME: &str = "beserver_x64.cfg";
const ACTIVE_PREFIX: &str = "beserver_x64_active_";

#[derive(Debug, thiserror::Error)]
pub enum BeConfigError {
    #[error("BattlEye: cannot use folder {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "BattlEye: RConIP {0} is not a loopback address; this fake server only ever binds 127.0.0.1 (refusing to start)"
    )]
    NonLoopback(IpAddr),
    #[error("BattlEye: invalid {key} value {value:?} in {file}")]
    BadValue {
        key: &'static str,
        value: String,
        file: PathBuf,
    },
}

/// RCon settings from the active config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RconSettings {
    pub password: String,
    pub ip: IpAddr,
    pub port: u16,
    pub max_ping: Option<u32>,
}

/// The BattlEye config as the server uses it.
#[derive(Debug, Clone)]
pub struct BeConfig {
    /// The `beserver_x64_active_<hex>.cfg` written at start.
    pub active_path: PathBuf,
    /// `None` when the config sets no `RConPassword` (RCon disabled, like the real BattlEye).
    pub rcon: Option<RconSettings>,
}

fn is_active_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.starts_with(ACTIVE_PREFIX) && l.ends_with(".cfg")
}

/// Loads the config from `dir`. `Ok(None)`: no folder or no config file (BattlEye runs without RCon).
/// `default_port` is used when `RConPort` is missing.
pub fn load(dir: &Path, default_port: u16) -> Result<Option<BeConfig>, BeConfigError> {
    let io_err = |source| BeConfigError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let mut base: Option<PathBuf> = None;
    let mut stale: Option<(SystemTime, PathBuf)> = None;
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.eq_ignore_ascii_case(BASE_NAME) {
            base = Some(entry.path());
        } else if is_active_name(&name) {
            let t = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if stale.as_ref().is_none_or(|(st, _)| t > *st) {
                stale = Some((t, entry.path()));
            }
        }
    }
    let source = match (stale, base) {
        (Some((_, p)), _) => p,
        (None, Some(p)) => p,
        (None, None) => return Ok(None),
    };
    let content = fs::read(&source).map_err(io_err)?;
    let active_path = dir.join(format!("{ACTIVE_PREFIX}{:08x}.cfg", rand::random::<u32>()));
    fs::write(&active_path, &content).map_err(io_err)?;
    // Read only the copy, like BattlEye.
    let text = fs::read(&active_path).map_err(io_err)?;
    let rcon = parse(&String::from_utf8_lossy(&text), default_port, &active_path)?;
    Ok(Some(BeConfig { active_path, rcon }))
}

/// Parses the config text (`Key value` lines, keys case-insensitive, `//` comments).
pub fn parse(
    text: &str,
    default_port: u16,
    file: &Path,
) -> Result<Option<RconSettings>, BeConfigError> {
    let mut password = None;
    let mut port = None;
    let mut ip = None;
    let mut max_ping = None;
    let bad = |key: &'static str, value: &str| BeConfigError::BadValue {
        key,
        value: value.to_string(),
        file: file.to_path_buf(),
    };
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        let (key, value) = match line.split_once(char::is_whitespace) {
            Some((k, v)) => (k, v.trim()),
            None => (line, ""),
        };
        match key.to_ascii_lowercase().as_str() {
            "rconpassword" if !value.is_empty() => password = Some(value.to_string()),
            "rconport" => {
                let p: u16 = value.parse().map_err(|_| bad("RConPort", value))?;
                if p == 0 {
                    return Err(bad("RConPort", value));
                }
                port = Some(p);
            }
            "rconip" => {
                let a: IpAddr = value.parse().map_err(|_| bad("RConIP", value))?;
                if !a.is_loopback() {
                    return Err(BeConfigError::NonLoopback(a));
                }
                ip = Some(a);
            }
            "maxping" => max_ping = Some(value.parse().map_err(|_| bad("MaxPing", value))?),
            _ => {}
        }
    }
    Ok(password.map(|password| RconSettings {
        password,
        ip: ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: port.unwrap_or(default_port),
        max_ping,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_keys_case_insensitively() {
        let p = Path::new("x.cfg");
        let s = parse(
            "RConPassword secret pw\nrconport 2310\nRConIP 127.0.0.2\nMaxPing 200 // comment\n",
            2306,
            p,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.password, "secret pw");
        assert_eq!(s.port, 2310);
        assert_eq!(s.ip, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(s.max_ping, Some(200));
        let d = parse("RConPassword x", 2306, p).unwrap().unwrap();
        assert_eq!((d.port, d.ip), (2306, IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(parse("RConPort 2306", 2306, p).unwrap().is_none());
    }

    #[test]
    fn refuses_non_loopback_and_bad_values() {
        let p = Path::new("x.cfg");
        for ip in ["0.0.0.0", "192.168.1.2", "::"] {
            assert!(matches!(
                parse(&format!("RConPassword x\nRConIP {ip}"), 1, p),
                Err(BeConfigError::NonLoopback(_))
            ));
        }
        assert!(parse("RConPort 99999", 1, p).is_err());
        assert!(parse("RConIP localhost", 1, p).is_err());
    }

    #[test]
    fn active_copy_and_stale_copies_win() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), 2306).unwrap().is_none());
        assert!(load(&dir.path().join("missing"), 2306).unwrap().is_none());
        fs::write(
            dir.path().join("BEServer_x64.cfg"),
            "RConPassword one\nRConPort 2400\n",
        )
        .unwrap();
        let c = load(dir.path(), 2306).unwrap().unwrap();
        let name = c
            .active_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("beserver_x64_active_") && name.ends_with(".cfg"));
        assert_eq!(name.len(), "beserver_x64_active_".len() + 8 + 4);
        assert_eq!(c.rcon.unwrap().password, "one");
        // The base is edited but the stale active copy is still there: the edit is ignored.
        fs::write(
            dir.path().join("BEServer_x64.cfg"),
            "RConPassword two\nRConPort 2400\n",
        )
        .unwrap();
        let c2 = load(dir.path(), 2306).unwrap().unwrap();
        assert_eq!(c2.rcon.unwrap().password, "one");
        // Without stale copies the edit is seen.
        for e in fs::read_dir(dir.path()).unwrap().flatten() {
            if is_active_name(&e.file_name().to_string_lossy()) {
                fs::remove_file(e.path()).unwrap();
            }
        }
        let c3 = load(dir.path(), 2306).unwrap().unwrap();
        assert_eq!(c3.rcon.unwrap().password, "two");
    }
}
