//! `UserService`: user administration (admin role only).

use chrono::Utc;
use languard_proto::v1 as pb;
use languard_proto::v1::user_service_server::UserService;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use tonic::{Request, Response, Status};

use super::{Ctx, convert, page};
use crate::auth::{Role, password, refresh};
use crate::db::entities::users;
use crate::error::{ApiError, ApiResult};

/// The `UserService` implementation.
pub struct UserApi {
    ctx: Ctx,
}

/// Checks a user or node name: 1-64 of letters, digits, '.', '_', '-'.
pub fn check_name(field: &str, name: &str) -> ApiResult<()> {
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::invalid(field, "must be 1-64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ApiError::invalid(
            field,
            "may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

impl UserApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn get_row(&self, id: i64) -> ApiResult<users::Model> {
        users::Entity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))
    }

    async fn admins(&self) -> ApiResult<u64> {
        Ok(users::Entity::find()
            .filter(users::Column::Role.eq(Role::Admin.as_str()))
            .count(&self.ctx.db)
            .await?)
    }

    async fn create(&self, r: pb::CreateUserRequest) -> ApiResult<pb::User> {
        check_name("username", &r.username)?;
        password::check_new(&r.password).map_err(|e| ApiError::invalid("password", e))?;
        let role = Role::from_proto(r.role)
            .ok_or_else(|| ApiError::invalid("role", "must be viewer, operator or admin"))?;
        if users::Entity::find()
            .filter(users::Column::Username.eq(&r.username))
            .one(&self.ctx.db)
            .await?
            .is_some()
        {
            return Err(ApiError::AlreadyExists(format!(
                "user {:?} already exists",
                r.username
            )));
        }
        let hash = password::hash_async(r.password)
            .await
            .map_err(ApiError::Internal)?;
        let now = Utc::now();
        let row = users::ActiveModel {
            username: Set(r.username),
            password_hash: Set(hash),
            role: Set(role.as_str().into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.ctx.db)
        .await?;
        Ok(convert::user(&row))
    }

    async fn update(&self, r: pb::UpdateUserRequest) -> ApiResult<pb::User> {
        let row = self.get_row(r.id).await?;
        let was_admin = row.role == Role::Admin.as_str();
        let mut active = row.into_active_model();
        let now = Utc::now();
        if let Some(role) = r.role {
            let role = Role::from_proto(role)
                .ok_or_else(|| ApiError::invalid("role", "must be viewer, operator or admin"))?;
            if was_admin && role != Role::Admin && self.admins().await? <= 1 {
                return Err(ApiError::FailedPrecondition(
                    "cannot demote the last admin".into(),
                ));
            }
            active.role = Set(role.as_str().into());
        }
        let password_changed = r.password.is_some();
        if let Some(pw) = r.password {
            password::check_new(&pw).map_err(|e| ApiError::invalid("password", e))?;
            active.password_hash =
                Set(password::hash_async(pw).await.map_err(ApiError::Internal)?);
        }
        active.updated_at = Set(now);
        let row = active.update(&self.ctx.db).await?;
        if password_changed {
            refresh::revoke_user(&self.ctx.db, row.id, now).await?;
        }
        Ok(convert::user(&row))
    }

    async fn delete(&self, id: i64) -> ApiResult<()> {
        let row = self.get_row(id).await?;
        if row.role == Role::Admin.as_str() && self.admins().await? <= 1 {
            return Err(ApiError::FailedPrecondition(
                "cannot delete the last admin".into(),
            ));
        }
        users::Entity::delete_by_id(id).exec(&self.ctx.db).await?;
        Ok(())
    }

    async fn list(&self, r: pb::ListUsersRequest) -> ApiResult<pb::ListUsersResponse> {
        let p = page::parse(r.page_size, &r.page_token)?;
        let mut q = users::Entity::find()
            .order_by_asc(users::Column::Id)
            .limit(p.size);
        if let Some(after) = p.after {
            q = q.filter(users::Column::Id.gt(after));
        }
        let rows = q.all(&self.ctx.db).await?;
        Ok(pb::ListUsersResponse {
            next_page_token: page::next_token(rows.len(), p.size, rows.last().map(|u| u.id)),
            users: rows.iter().map(convert::user).collect(),
        })
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(self.create(req.into_inner()).await?))
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(convert::user(
            &self.get_row(req.get_ref().id).await?,
        )))
    }

    async fn update_user(
        &self,
        req: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(self.update(req.into_inner()).await?))
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        self.ctx.auth.require(&req, Role::Admin).await?;
        self.delete(req.get_ref().id).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }
}
