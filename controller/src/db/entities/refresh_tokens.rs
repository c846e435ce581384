//! `refresh_tokens`: hashed, single-use refresh tokens grouped in rotation families.

use sea_orm::entity::prelude::*;

/// A row of `refresh_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// SHA-256 (hex) of the token; the token itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Every token issued by rotation from one login shares a family.
    pub family_id: String,
    /// Expiry.
    pub expires_at: DateTimeUtc,
    /// When it was spent by a refresh; a second use revokes the family.
    pub used_at: Option<DateTimeUtc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// Issue time.
    pub created_at: DateTimeUtc,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
