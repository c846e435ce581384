//! The built-in Arma 3 adapter: the command line from `Arma3Settings` (an argv list, never a shell
//! string), the profiles dir (logs and the BattlEye folder), the BattlEye RCon config written before
//! each start, the `.rpt` parser, and a graceful stop over RCon `#shutdown`, then SIGTERM.

use std::path::{Path, PathBuf};

use languard_proto::v1 as pb;
use languard_rpt::LogTimeZone;

use crate::check::{self, PortUse, SpecError};
use crate::parse::{LogParser, RptParser};
use crate::{AdapterError, GameAdapter, Launch, LogFiles, RconProtocol, StopStep, time_zone_of};

/// Ports an Arma 3 server occupies: the game port and the next four (query, Steam, VON).
pub const PORT_SPAN: u16 = 5;
/// The default game port.
pub const DEFAULT_GAME_PORT: i32 = 2302;

/// The game type name.
pub const NAME: &str = "arma3";

/// The default log file patterns (the agent writes `arma3server_x64_<date>.rpt` from stdout).
pub const LOG_PATTERNS: [&str; 2] = ["arma3server_x64_*.rpt", "arma3server_*.rpt"];

/// The Arma 3 adapter.
#[derive(Debug, Default)]
pub struct Arma3;

/// The profiles dir of a spec: as configured, else `server/` next to the executable.
pub fn profiles_dir(spec: &pb::ServerSpec) -> PathBuf {
    let configured = spec
        .arma3
        .as_ref()
        .map(|a| a.profiles_dir.as_str())
        .unwrap_or("");
    if configured.is_empty() {
        exe_dir(spec).join("server")
    } else {
        PathBuf::from(configured)
    }
}

fn exe_dir(spec: &pb::ServerSpec) -> PathBuf {
    Path::new(&spec.executable_path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The BattlEye folder of a server: `-bepath=` from its extra args (relative to the server's
/// working dir `cwd`, as the server reads it), else `<profiles>/BattlEye`.
pub fn battleye_dir(profiles: &Path, extra_args: &[String], cwd: &Path) -> PathBuf {
    extra_args
        .iter()
        .find_map(|a| {
            let lower = a.to_ascii_lowercase();
            lower
                .starts_with("-bepath=")
                .then(|| cwd.join(&a["-bepath=".len()..]))
        })
        .unwrap_or_else(|| profiles.join("BattlEye"))
}

/// Writes `BEServer_x64.cfg` and `beserver_x64.cfg` (RConPassword, RConPort, RConIP 127.0.0.1),
/// mode 0600, and deletes stale `*_active_*` copies, which BattlEye would otherwise read instead.
pub fn write_battleye_config(dir: &Path, port: i32, password: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if name.starts_with("beserver") && name.contains("_active_") && name.ends_with(".cfg") {
            std::fs::remove_file(entry.path())?;
        }
    }
    let body = format!("RConPassword {password}\nRConPort {port}\nRConIP 127.0.0.1\n");
    for name in ["BEServer_x64.cfg", "beserver_x64.cfg"] {
        let path = dir.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        let mut f = opts.open(&path)?;
        // The mode above applies to new files only; an existing file may have been readable.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(body.as_bytes())?;
    }
    Ok(())
}

impl GameAdapter for Arma3 {
    fn info(&self) -> pb::GameType {
        pb::GameType {
            name: NAME.into(),
            display_name: "Arma 3".into(),
            source: "builtin".into(),
            has_rcon: true,
            rcon_protocol: "battleye".into(),
            log_format: "rpt".into(),
            log_file_globs: LOG_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
            stop_sequence: vec!["rcon #shutdown".into(), "signal SIGTERM".into()],
            settings: Vec::new(),
            required_settings: Vec::new(),
            ports: vec![
                "game: arma3.game_port (and the next 4)".into(),
                "rcon: rcon_port".into(),
            ],
        }
    }

    fn normalize(&self, spec: &mut pb::ServerSpec) {
        let a = spec.arma3.get_or_insert_with(Default::default);
        if a.game_port == 0 {
            a.game_port = DEFAULT_GAME_PORT;
        }
    }

    fn validate(&self, spec: &pb::ServerSpec) -> Result<(), SpecError> {
        check::abs_path("server.executable_path", &spec.executable_path, true)?;
        if let Some(name) = spec.settings.keys().next() {
            return Err(SpecError::new(
                "server.settings",
                format!("{name:?}: the arma3 adapter takes no settings; use the arma3 fields"),
            ));
        }
        let a = spec.arma3.clone().unwrap_or_default();
        let game_port = if a.game_port == 0 {
            DEFAULT_GAME_PORT
        } else {
            a.game_port
        };
        check::port("server.arma3.game_port", i64::from(game_port))?;
        if i64::from(game_port) + i64::from(PORT_SPAN) - 1 > 65535 {
            return Err(SpecError::new(
                "server.arma3.game_port",
                "the server also uses the next 4 ports; too high",
            ));
        }
        check::abs_path("server.arma3.profiles_dir", &a.profiles_dir, false)?;
        check::abs_path("server.arma3.config_path", &a.config_path, false)?;
        check::abs_path(
            "server.arma3.basic_config_path",
            &a.basic_config_path,
            false,
        )?;
        for (field, list) in [
            ("server.arma3.mods", &a.mods),
            ("server.arma3.server_mods", &a.server_mods),
        ] {
            if list
                .iter()
                .any(|m| m.is_empty() || m.contains(';') || m.contains('\0'))
            {
                return Err(SpecError::new(
                    field,
                    "entries must be non-empty and contain no ';'",
                ));
            }
        }
        for pattern in a.log_file_glob.split(';').filter(|p| !p.trim().is_empty()) {
            if pattern.contains('/') || pattern.contains('\\') || pattern.contains('\0') {
                return Err(SpecError::new(
                    "server.arma3.log_file_glob",
                    format!("{pattern:?}: patterns name files in the profiles dir, without a path"),
                ));
            }
        }
        let tz = a.log_time_zone.trim();
        if !tz.is_empty() && tz.parse::<LogTimeZone>().is_err() {
            return Err(SpecError::new(
                "server.arma3.log_time_zone",
                format!("unknown time zone {tz:?}"),
            ));
        }
        if a.extra_args.iter().any(|x| x.contains('\0')) {
            return Err(SpecError::new(
                "server.arma3.extra_args",
                "must not contain NUL",
            ));
        }
        if spec.rcon_port != 0 {
            check::port("server.rcon_port", i64::from(spec.rcon_port))?;
            if (game_port..game_port + i32::from(PORT_SPAN)).contains(&spec.rcon_port) {
                return Err(SpecError::new(
                    "server.rcon_port",
                    "must differ from the game port and the 4 after it",
                ));
            }
        }
        Ok(())
    }

    fn ports(&self, spec: &pb::ServerSpec) -> Vec<PortUse> {
        let a = spec.arma3.clone().unwrap_or_default();
        let game = if a.game_port == 0 {
            DEFAULT_GAME_PORT
        } else {
            a.game_port
        };
        let mut v = Vec::new();
        if let Ok(first) = u16::try_from(game) {
            v.push(PortUse {
                field: "server.arma3.game_port".into(),
                first,
                last: first.saturating_add(PORT_SPAN - 1),
            });
        }
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
        let program = PathBuf::from(&spec.executable_path);
        let a = spec.arma3.clone().unwrap_or_default();
        let profiles = profiles_dir(spec);
        let mut args = vec![format!(
            "-port={}",
            if a.game_port == 0 { 2302 } else { a.game_port }
        )];
        if !a.config_path.is_empty() {
            args.push(format!("-config={}", a.config_path));
        }
        if !a.basic_config_path.is_empty() {
            args.push(format!("-cfg={}", a.basic_config_path));
        }
        args.push(format!("-profiles={}", profiles.display()));
        if !a.profile_name.is_empty() {
            args.push(format!("-name={}", a.profile_name));
        }
        if !a.mods.is_empty() {
            args.push(format!("-mod={}", a.mods.join(";")));
        }
        if !a.server_mods.is_empty() {
            args.push(format!("-serverMod={}", a.server_mods.join(";")));
        }
        args.extend(a.extra_args.iter().cloned());
        let cwd = if spec.working_dir.is_empty() {
            exe_dir(spec)
        } else {
            PathBuf::from(&spec.working_dir)
        };
        Ok(Launch {
            program,
            args,
            cwd,
            env: Vec::new(),
            log_dir: profiles,
            stdout_prefix: "arma3server_x64_".into(),
            stdout_suffix: ".rpt".into(),
        })
    }

    fn prepare(&self, spec: &pb::ServerSpec, launch: &Launch) -> Result<(), AdapterError> {
        if spec.rcon_port == 0 {
            return Ok(());
        }
        let dir = battleye_dir(&launch.log_dir, &launch.args, &launch.cwd);
        write_battleye_config(&dir, spec.rcon_port, &spec.rcon_password).map_err(|e| {
            AdapterError(format!(
                "cannot write the BattlEye config in {}: {e}",
                dir.display()
            ))
        })
    }

    fn log_files(&self, spec: &pb::ServerSpec) -> Result<LogFiles, AdapterError> {
        let configured: Vec<String> = spec
            .arma3
            .as_ref()
            .map(|a| a.log_file_glob.as_str())
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(LogFiles {
            dir: profiles_dir(spec),
            patterns: if configured.is_empty() {
                LOG_PATTERNS.iter().map(|p| (*p).to_owned()).collect()
            } else {
                configured
            },
        })
    }

    fn log_parser(&self, spec: &pb::ServerSpec, default_tz: LogTimeZone) -> Box<dyn LogParser> {
        let tz = spec
            .arma3
            .as_ref()
            .map_or(default_tz, |a| time_zone_of(&a.log_time_zone, default_tz));
        Box::new(RptParser::new(tz))
    }

    fn rcon(&self, spec: &pb::ServerSpec) -> Option<RconProtocol> {
        (spec.rcon_port > 0).then_some(RconProtocol::BattlEye)
    }

    fn stop_sequence(&self, spec: &pb::ServerSpec) -> Vec<StopStep> {
        let mut v = Vec::new();
        if spec.rcon_port > 0 {
            v.push(StopStep::Rcon("#shutdown".into()));
        }
        v.push(StopStep::Signal(15));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_built_from_the_spec_without_a_shell() {
        let spec = pb::ServerSpec {
            game_type: "arma3".into(),
            executable_path: "/srv/a3/arma3server_x64".into(),
            arma3: Some(pb::Arma3Settings {
                game_port: 2402,
                config_path: "/srv/a3/server.cfg".into(),
                basic_config_path: "/srv/a3/basic.cfg".into(),
                mods: vec!["@CBA_A3".into(), "@ace".into()],
                server_mods: vec!["@admin tools".into()],
                extra_args: vec!["-world=empty".into(), "-autoInit".into()],
                profile_name: "main".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let l = Arma3.launch(&spec).expect("launch");
        assert_eq!(
            l.args,
            vec![
                "-port=2402",
                "-config=/srv/a3/server.cfg",
                "-cfg=/srv/a3/basic.cfg",
                "-profiles=/srv/a3/server",
                "-name=main",
                "-mod=@CBA_A3;@ace",
                "-serverMod=@admin tools",
                "-world=empty",
                "-autoInit",
            ]
        );
        assert_eq!(l.cwd, PathBuf::from("/srv/a3"));
        assert_eq!(l.log_dir, PathBuf::from("/srv/a3/server"));
        assert_eq!(
            Arma3.stop_sequence(&spec),
            vec![StopStep::Signal(15)],
            "no RCon: SIGTERM only"
        );
    }

    #[test]
    fn relative_paths_and_settings_are_refused() {
        let spec = pb::ServerSpec {
            game_type: "arma3".into(),
            executable_path: "x".into(),
            ..Default::default()
        };
        assert!(Arma3.launch(&spec).is_err());
        let mut spec = pb::ServerSpec {
            game_type: "arma3".into(),
            executable_path: "/x/y".into(),
            ..Default::default()
        };
        spec.settings.insert("port".into(), "1".into());
        assert!(Arma3.validate(&spec).is_err());
    }

    #[test]
    fn battleye_config_replaces_stale_active_copies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let be = dir.path().join("BattlEye");
        std::fs::create_dir_all(&be).expect("mkdir");
        std::fs::write(
            be.join("beserver_x64_active_1a2b.cfg"),
            "RConPassword old\n",
        )
        .expect("stale");
        std::fs::write(
            be.join("BEServer_x64_active_ffff.cfg"),
            "RConPassword old\n",
        )
        .expect("stale");
        std::fs::write(be.join("beserver_x64.cfg"), "RConPassword old\n").expect("old");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                be.join("beserver_x64.cfg"),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod");
        }
        write_battleye_config(&be, 2310, "s3cret").expect("write");
        {
            use std::os::unix::fs::PermissionsExt;
            for name in ["beserver_x64.cfg", "BEServer_x64.cfg"] {
                let mode = std::fs::metadata(be.join(name))
                    .expect("meta")
                    .permissions()
                    .mode();
                assert_eq!(
                    mode & 0o777,
                    0o600,
                    "{name}: the password is not world-readable"
                );
            }
        }
        let names: Vec<String> = std::fs::read_dir(&be)
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("_active_")), "{names:?}");
        let cfg = std::fs::read_to_string(be.join("beserver_x64.cfg")).expect("cfg");
        assert_eq!(
            cfg,
            "RConPassword s3cret\nRConPort 2310\nRConIP 127.0.0.1\n"
        );
        assert_eq!(
            std::fs::read_to_string(be.join("BEServer_x64.cfg")).expect("cfg"),
            cfg
        );
    }

    #[test]
    fn bepath_overrides_the_default_folder() {
        let p = Path::new("/srv/profiles");
        let cwd = Path::new("/srv/a3");
        assert_eq!(
            battleye_dir(p, &[], cwd),
            PathBuf::from("/srv/profiles/BattlEye")
        );
        assert_eq!(
            battleye_dir(p, &["-BEpath=/srv/be".into()], cwd),
            PathBuf::from("/srv/be")
        );
        assert_eq!(
            battleye_dir(p, &["-bepath=be".into()], cwd),
            PathBuf::from("/srv/a3/be"),
            "relative to the server's working dir"
        );
    }
}
