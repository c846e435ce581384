//! The Arma 3 adapter: turns a server spec into a command line (an argv list, never a shell string),
//! a working directory and a profiles directory.

use std::path::{Path, PathBuf};

use languard_proto::v1 as pb;

/// How to launch one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The executable.
    pub program: PathBuf,
    /// Arguments, one entry each.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Profiles directory (logs, BattlEye folder).
    pub profiles_dir: PathBuf,
}

/// Why a spec cannot be launched.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(pub String);

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

/// Builds the launch of an `arma3` spec.
pub fn arma3(spec: &pb::ServerSpec) -> Result<Launch, AdapterError> {
    if spec.game_type != "arma3" {
        return Err(AdapterError(format!(
            "unknown game type {:?}",
            spec.game_type
        )));
    }
    let program = PathBuf::from(&spec.executable_path);
    if !program.is_absolute() {
        return Err(AdapterError(format!(
            "executable_path {:?} is not absolute",
            spec.executable_path
        )));
    }
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
        profiles_dir: profiles,
    })
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
        let l = arma3(&spec).expect("launch");
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
        assert_eq!(l.profiles_dir, PathBuf::from("/srv/a3/server"));
    }

    #[test]
    fn unknown_game_and_relative_paths_are_refused() {
        let spec = pb::ServerSpec {
            game_type: "quake".into(),
            executable_path: "/x".into(),
            ..Default::default()
        };
        assert!(arma3(&spec).is_err());
        let spec = pb::ServerSpec {
            game_type: "arma3".into(),
            executable_path: "x".into(),
            ..Default::default()
        };
        assert!(arma3(&spec).is_err());
    }
}
