//! Spec checks shared by adapters: a failing check names the field of the public API
//! (`server.arma3.game_port`, `server.settings.port`, ...), so the controller can answer
//! `INVALID_ARGUMENT` with it.

use std::path::Path;

/// A spec value that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    /// The field, as the public API names it.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl SpecError {
    /// An error of `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<SpecError> for crate::AdapterError {
    fn from(e: SpecError) -> Self {
        crate::AdapterError(e.to_string())
    }
}

/// An absolute path without NUL; empty is fine unless `required`.
pub fn abs_path(field: &str, path: &str, required: bool) -> Result<(), SpecError> {
    if path.is_empty() {
        return if required {
            Err(SpecError::new(field, "is required"))
        } else {
            Ok(())
        };
    }
    if path.contains('\0') {
        return Err(SpecError::new(field, "must not contain NUL"));
    }
    if !Path::new(path).is_absolute() {
        return Err(SpecError::new(
            field,
            format!("must be an absolute path, got {path:?}"),
        ));
    }
    Ok(())
}

/// A port a server may use: 1024-65535.
pub fn port(field: &str, port: i64) -> Result<u16, SpecError> {
    if !(1024..=65535).contains(&port) {
        return Err(SpecError::new(
            field,
            format!("must be between 1024 and 65535, got {port}"),
        ));
    }
    u16::try_from(port).map_err(|_| SpecError::new(field, "out of range"))
}

/// Ports a server occupies on its host, for clash checks between servers of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUse {
    /// The field that sets them.
    pub field: String,
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl PortUse {
    /// Whether two uses share a port.
    pub fn overlaps(&self, other: &PortUse) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}
