//! `AuthService`: login, token refresh and rotation, logout, who-am-I, password change.

use chrono::Utc;
use languard_proto::v1 as pb;
use languard_proto::v1::auth_service_server::AuthService;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use tonic::{Request, Response, Status};

use super::Ctx;
use super::convert;
use crate::auth::guard::client_ip;
use crate::auth::{Role, password, refresh};
use crate::db::entities::users;
use crate::error::{ApiError, ApiResult};

/// The `AuthService` implementation.
pub struct AuthApi {
    ctx: Ctx,
}

impl AuthApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn tokens_for(
        &self,
        user: &users::Model,
        family: Option<String>,
    ) -> ApiResult<pb::LoginResponse> {
        let now = Utc::now();
        let (access, access_exp) = self
            .ctx
            .auth
            .keys()
            .issue(user.id, &user.username, now)
            .map_err(|e| ApiError::Internal(e.0))?;
        let (refresh, refresh_exp) = refresh::issue(
            &self.ctx.db,
            user.id,
            family,
            self.ctx.config.refresh_token_ttl_seconds,
            now,
        )
        .await?;
        Ok(pb::LoginResponse {
            access_token: access,
            access_token_expire_time: Some(convert::timestamp(access_exp)),
            refresh_token: refresh,
            refresh_token_expire_time: Some(convert::timestamp(refresh_exp)),
            user: Some(convert::user(user)),
        })
    }

    async fn login(&self, req: Request<pb::LoginRequest>) -> ApiResult<pb::LoginResponse> {
        let ip = client_ip(&req);
        let r = req.into_inner();
        if r.username.is_empty() {
            return Err(ApiError::invalid("username", "must not be empty"));
        }
        if let Err(wait) = self.ctx.limiter.check(&r.username, ip) {
            tracing::warn!(username = %r.username, ?ip, "login rate limit hit");
            return Err(ApiError::ResourceExhausted(format!(
                "too many login attempts; try again in {wait} s"
            )));
        }
        let user = users::Entity::find()
            .filter(users::Column::Username.eq(&r.username))
            .one(&self.ctx.db)
            .await?;
        // Verify against a dummy hash for unknown users too, so timing does not reveal who exists.
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = password::verify_async(r.password, stored).await;
        match user {
            Some(u) if ok => {
                tracing::info!(username = %u.username, "login");
                self.tokens_for(&u, None).await
            }
            _ => {
                tracing::info!(username = %r.username, ?ip, "login failed");
                Err(ApiError::Unauthenticated(
                    "wrong username or password".into(),
                ))
            }
        }
    }

    async fn refresh(&self, r: pb::RefreshRequest) -> ApiResult<pb::LoginResponse> {
        if r.refresh_token.is_empty() {
            return Err(ApiError::invalid("refresh_token", "must not be empty"));
        }
        let row = refresh::spend(&self.ctx.db, &r.refresh_token, Utc::now()).await?;
        let user = users::Entity::find_by_id(row.user_id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("the token's user no longer exists".into()))?;
        self.tokens_for(&user, Some(row.family_id)).await
    }

    async fn logout(&self, req: Request<pb::LogoutRequest>) -> ApiResult<pb::LogoutResponse> {
        let caller = self.ctx.auth.require(&req, Role::Viewer).await?;
        let r = req.into_inner();
        if r.refresh_token.is_empty() {
            return Err(ApiError::invalid("refresh_token", "must not be empty"));
        }
        let hash = refresh::hash_token(&r.refresh_token);
        let row = crate::db::entities::refresh_tokens::Entity::find()
            .filter(crate::db::entities::refresh_tokens::Column::TokenHash.eq(hash))
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| {
                ApiError::invalid("refresh_token", "is not a refresh token of this controller")
            })?;
        if row.user_id != caller.user_id {
            return Err(ApiError::PermissionDenied(
                "the refresh token belongs to another user".into(),
            ));
        }
        refresh::revoke_family(&self.ctx.db, &row.family_id, Utc::now()).await?;
        Ok(pb::LogoutResponse {})
    }

    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> ApiResult<pb::ChangePasswordResponse> {
        let caller = self.ctx.auth.require(&req, Role::Viewer).await?;
        let r = req.into_inner();
        password::check_new(&r.new_password).map_err(|e| ApiError::invalid("new_password", e))?;
        let user = users::Entity::find_by_id(caller.user_id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
        if !password::verify_async(r.current_password, user.password_hash.clone()).await {
            return Err(ApiError::PermissionDenied(
                "current_password is wrong".into(),
            ));
        }
        let hash = password::hash_async(r.new_password)
            .await
            .map_err(ApiError::Internal)?;
        let now = Utc::now();
        let mut active = user.into_active_model();
        active.password_hash = Set(hash);
        active.updated_at = Set(now);
        active.update(&self.ctx.db).await?;
        refresh::revoke_user(&self.ctx.db, caller.user_id, now).await?;
        Ok(pb::ChangePasswordResponse {})
    }
}

/// A real argon2id hash of a random string, verified against when the username is unknown.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| password::hash(&refresh::random_token("")).unwrap_or_default());

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        Ok(Response::new(AuthApi::login(self, req).await?))
    }

    async fn refresh(
        &self,
        req: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        Ok(Response::new(
            AuthApi::refresh(self, req.into_inner()).await?,
        ))
    }

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        Ok(Response::new(AuthApi::logout(self, req).await?))
    }

    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Viewer).await?;
        let user = users::Entity::find_by_id(caller.user_id)
            .one(&self.ctx.db)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
        Ok(Response::new(pb::WhoAmIResponse {
            user: Some(convert::user(&user)),
        }))
    }

    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        Ok(Response::new(AuthApi::change_password(self, req).await?))
    }
}
