//! Refresh tokens: random, stored only as SHA-256, single use. Each use rotates the token within its
//! family; presenting a spent token again revokes the whole family (a stolen token was replayed).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::db::entities::refresh_tokens;
use crate::error::{ApiError, ApiResult};

/// A fresh random secret with a recognisable prefix.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a token, hex. Tokens are high-entropy, so no salt or slow hash is needed.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a refresh token for `user_id` in `family` (a new family when `None`).
pub async fn issue(
    db: &impl ConnectionTrait,
    user_id: i64,
    family: Option<String>,
    ttl_seconds: u64,
    now: DateTime<Utc>,
) -> ApiResult<(String, DateTime<Utc>)> {
    let token = random_token("lgr_");
    let expires =
        now + chrono::Duration::seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2));
    refresh_tokens::ActiveModel {
        user_id: Set(user_id),
        token_hash: Set(hash_token(&token)),
        family_id: Set(family.unwrap_or_else(|| random_token(""))),
        expires_at: Set(expires),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((token, expires))
}

/// Spends `token`: returns its row if it was valid and unused. A reused token revokes its family.
pub async fn spend(
    db: &impl ConnectionTrait,
    token: &str,
    now: DateTime<Utc>,
) -> ApiResult<refresh_tokens::Model> {
    let invalid = || ApiError::Unauthenticated("invalid refresh token".into());
    let row = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(hash_token(token)))
        .one(db)
        .await?
        .ok_or_else(invalid)?;
    if row.revoked_at.is_some() {
        return Err(ApiError::Unauthenticated("refresh token revoked".into()));
    }
    if row.expires_at <= now {
        return Err(ApiError::Unauthenticated("refresh token expired".into()));
    }
    // Conditional update: of two concurrent uses, exactly one wins.
    let res = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
        .filter(refresh_tokens::Column::Id.eq(row.id))
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if res.rows_affected != 1 {
        revoke_family(db, &row.family_id, now).await?;
        tracing::warn!(
            user_id = row.user_id,
            "refresh token reuse detected; family revoked"
        );
        return Err(ApiError::Unauthenticated(
            "refresh token already used; every session of this login was revoked".into(),
        ));
    }
    Ok(row)
}

/// Revokes every token of a family.
pub async fn revoke_family(
    db: &impl ConnectionTrait,
    family: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::FamilyId.eq(family))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every token of a user.
pub async fn revoke_user(
    db: &impl ConnectionTrait,
    user_id: i64,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::UserId.eq(user_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
