//! The per-request guard: reads `authorization: Bearer <token>`, verifies it, loads the user (so a
//! deleted user or a changed role takes effect at once), and checks the role.

use std::net::{IpAddr, SocketAddr};

use sea_orm::{DatabaseConnection, EntityTrait};
use tonic::Request;

use super::jwt::JwtKeys;
use super::role::Role;
use crate::db::entities::users;
use crate::error::{ApiError, ApiResult};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id.
    pub user_id: i64,
    /// Username.
    pub username: String,
    /// Current role.
    pub role: Role,
}

/// Verifies access tokens and roles.
#[derive(Clone)]
pub struct Authenticator {
    keys: JwtKeys,
    db: DatabaseConnection,
}

impl Authenticator {
    /// A guard over `keys`, loading users from `db`.
    pub fn new(keys: JwtKeys, db: DatabaseConnection) -> Self {
        Self { keys, db }
    }

    /// The signing keys.
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    /// Authenticates a bare token (the WebSocket passes it as a query parameter).
    pub async fn authenticate_token(&self, token: &str) -> ApiResult<Caller> {
        let (user_id, _) = self
            .keys
            .verify(token)
            .map_err(|e| ApiError::Unauthenticated(e.0))?;
        let user = users::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("the token's user no longer exists".into()))?;
        let role = Role::parse(&user.role)
            .ok_or_else(|| ApiError::Internal(format!("user {} has bad role", user.id)))?;
        Ok(Caller {
            user_id: user.id,
            username: user.username,
            role,
        })
    }

    /// Authenticates a request and requires at least `min` role.
    pub async fn require<T>(&self, req: &Request<T>, min: Role) -> ApiResult<Caller> {
        let token = bearer(req)?;
        let caller = self.authenticate_token(token).await?;
        if caller.role < min {
            return Err(ApiError::PermissionDenied(format!(
                "this needs the {} role; {} has {}",
                min.as_str(),
                caller.username,
                caller.role.as_str()
            )));
        }
        Ok(caller)
    }
}

/// The bearer token of a request.
pub fn bearer<T>(req: &Request<T>) -> ApiResult<&str> {
    let value = req.metadata().get("authorization").ok_or_else(|| {
        ApiError::Unauthenticated("missing authorization metadata (Bearer token)".into())
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("authorization is not ASCII".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| {
            ApiError::Unauthenticated("authorization must be \"Bearer <token>\"".into())
        })?;
    Ok(token.trim())
}

/// The client's address, as the listener saw it.
pub fn client_ip<T>(req: &Request<T>) -> Option<IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| req.remote_addr().map(|a| a.ip()))
}
