//! First-start work: the data dir, the JWT secret, and the initial admin account.

use std::io::Write;
use std::path::Path;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Set};

use crate::auth::{Role, password, refresh};
use crate::db::entities::users;

/// Bootstrap failures.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// Hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BootstrapError + '_ {
    move |source| BootstrapError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `dir` (mode 0700 on Unix) if missing.
pub fn ensure_dir(dir: &Path) -> Result<(), BootstrapError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir))?;
    }
    Ok(())
}

/// Writes a secret file readable only by its owner (0600), replacing any previous one.
pub fn write_secret(path: &Path, contents: &str) -> Result<(), BootstrapError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(contents.as_bytes()).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// The JWT secret: configured, or read from `<data_dir>/jwt-secret`, or generated there (0600).
pub fn jwt_secret(configured: &str, data_dir: &Path) -> Result<Vec<u8>, BootstrapError> {
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "JWT secret file too short; generating a new one")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(BootstrapError::Io {
                path: path.display().to_string(),
                source: e,
            });
        }
    }
    let secret = refresh::random_token("");
    write_secret(&path, &secret)?;
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(secret.into_bytes())
}

/// Where the generated initial admin password is written.
pub fn initial_password_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("initial-admin-password")
}

/// With no users at all, creates `admin` with `LANGUARD_ADMIN_PASSWORD` or a random password that is
/// printed once and written to `<data_dir>/initial-admin-password` (0600). Never a fixed default.
pub async fn initial_admin(
    db: &DatabaseConnection,
    data_dir: &Path,
    from_env: Option<String>,
) -> Result<(), BootstrapError> {
    if users::Entity::find().count(db).await? > 0 {
        return Ok(());
    }
    let (pw, generated) = match from_env.filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None => (refresh::random_token("")[..24].to_owned(), true),
    };
    let hash = password::hash_async(pw.clone())
        .await
        .map_err(BootstrapError::Hash)?;
    let now = Utc::now();
    users::ActiveModel {
        username: Set("admin".into()),
        password_hash: Set(hash),
        role: Set(Role::Admin.as_str().into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    if generated {
        let path = initial_password_path(data_dir);
        write_secret(&path, &format!("{pw}\n"))?;
        eprintln!(
            "initial admin account: username \"admin\", password \"{pw}\" (also in {})",
            path.display()
        );
    } else {
        tracing::info!("initial admin account created from LANGUARD_ADMIN_PASSWORD");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn the_jwt_secret_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = jwt_secret("", dir.path()).expect("generate");
        assert!(first.len() >= 32);
        assert_eq!(mode(&dir.path().join("jwt-secret")), 0o600);
        assert_eq!(
            jwt_secret("", dir.path()).expect("reuse"),
            first,
            "kept across restarts"
        );
        assert_eq!(
            jwt_secret("configured-secret-configured-secret", dir.path()).expect("configured"),
            b"configured-secret-configured-secret"
        );
    }

    #[tokio::test]
    async fn the_initial_admin_gets_a_random_password_written_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&url).await.expect("db");
        initial_admin(&db, dir.path(), None).await.expect("admin");
        let path = initial_password_path(dir.path());
        assert_eq!(mode(&path), 0o600);
        let pw = std::fs::read_to_string(&path)
            .expect("password file")
            .trim()
            .to_owned();
        assert!(pw.len() >= 16, "random, not a fixed default");
        let user = users::Entity::find()
            .one(&db)
            .await
            .expect("query")
            .expect("admin exists");
        assert_eq!(
            (user.username.as_str(), user.role.as_str()),
            ("admin", "admin")
        );
        assert!(password::verify(&pw, &user.password_hash));
        // A second start changes nothing.
        initial_admin(&db, dir.path(), None).await.expect("again");
        assert_eq!(users::Entity::find().count(&db).await.expect("count"), 1);
        assert_eq!(std::fs::read_to_string(&path).expect("file").trim(), pw);
    }
}
