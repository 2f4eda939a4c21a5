//! Users of an account: created with a password hash, found by email for
//! login, read by id.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::scope::Role;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A user as login needs it: with the stored hash.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

struct UserRow {
    id: Uuid,
    account_id: Uuid,
    email: String,
    role: String,
    created_at: DateTime<Utc>,
    password_hash: String,
}

impl TryFrom<UserRow> for Credentials {
    type Error = sqlx::Error;

    fn try_from(row: UserRow) -> Result<Self, sqlx::Error> {
        let role = Role::parse(&row.role).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown role {:?} in database", row.role).into())
        })?;
        Ok(Credentials {
            user: User {
                id: row.id,
                account_id: row.account_id,
                email: row.email,
                role,
                created_at: row.created_at,
            },
            password_hash: row.password_hash,
        })
    }
}

/// `Err(Database)` with constraint `users_email_key` when the email is taken.
pub async fn create(
    db: impl sqlx::PgExecutor<'_>,
    account_id: Uuid,
    email: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        "insert into users (id, account_id, email, password_hash, role) values ($1, $2, $3, $4, $5)
         returning id, account_id, email, role, created_at, password_hash",
        Uuid::now_v7(),
        account_id,
        email,
        password_hash,
        role.as_str(),
    )
    .fetch_one(db)
    .await?;
    Ok(Credentials::try_from(row)?.user)
}

pub async fn find_by_email(db: &PgPool, email: &str) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        "select id, account_id, email, role, created_at, password_hash
         from users where lower(email) = lower($1)",
        email,
    )
    .fetch_optional(db)
    .await?;
    row.map(Credentials::try_from).transpose()
}

pub fn is_duplicate_email(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.constraint() == Some("users_email_key"))
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        "select id, account_id, email, role, created_at, password_hash from users where id = $1",
        id,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Credentials::try_from).transpose()?.map(|c| c.user))
}
