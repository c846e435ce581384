//! Roles, ordered: admin includes operator includes viewer.

use languard_proto::v1 as pb;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read only.
    Viewer,
    /// Power and RCon actions.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// From the proto enum; `None` for unspecified or unknown values.
    pub fn from_proto(v: i32) -> Option<Role> {
        match pb::Role::try_from(v).ok()? {
            pb::Role::Viewer => Some(Role::Viewer),
            pb::Role::Operator => Some(Role::Operator),
            pb::Role::Admin => Some(Role::Admin),
            pb::Role::Unspecified => None,
        }
    }

    /// To the proto enum.
    pub fn to_proto(self) -> pb::Role {
        match self {
            Role::Viewer => pb::Role::Viewer,
            Role::Operator => pb::Role::Operator,
            Role::Admin => pb::Role::Admin,
        }
    }
}
