//! Login sessions: refresh-token families with rotation and reuse detection.
//!
//! Each login starts a family. A refresh spends its token and issues the
//! next one in the same family; presenting a token that was already spent
//! means it leaked (or raced), and the whole family is revoked, logging out
//! the attacker and the user alike (OAuth 2.0 Security BCP, section 4.14).

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::limits::{LimitsOverride, Tier};
use crate::auth::scope::Role;

const PREFIX: &str = "voxqr_";

/// A refresh token to hand to the client; the only plaintext copy.
pub struct IssuedRefresh {
    pub token: String,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

async fn insert_token(
    conn: &mut sqlx::PgConnection,
    family_id: Uuid,
    ttl: chrono::Duration,
) -> Result<IssuedRefresh, sqlx::Error> {
    let token = new_token();
    let expires_at = sqlx::query_scalar!(
        "insert into refresh_tokens (id, family_id, token_hash, expires_at)
         values ($1, $2, $3, now() + $4) returning expires_at",
        Uuid::now_v7(),
        family_id,
        token_hash(&token),
        // The macros know interval only as PgInterval; chrono's Duration
        // encodes to the same interval.
        ttl as _,
    )
    .fetch_one(conn)
    .await?;
    Ok(IssuedRefresh {
        token,
        family_id,
        expires_at,
    })
}

/// Starts a family for a fresh login.
pub async fn start(
    db: &PgPool,
    user_id: Uuid,
    ttl: chrono::Duration,
) -> Result<IssuedRefresh, sqlx::Error> {
    let mut tx = db.begin().await?;
    let family_id = Uuid::now_v7();
    sqlx::query!(
        "insert into token_families (id, user_id) values ($1, $2)",
        family_id,
        user_id,
    )
    .execute(&mut *tx)
    .await?;
    let issued = insert_token(&mut tx, family_id, ttl).await?;
    tx.commit().await?;
    Ok(issued)
}

pub enum Rotation {
    /// The next token of the family, for `user_id`.
    Rotated {
        user_id: Uuid,
        refresh: IssuedRefresh,
    },
    /// A spent token came back: the family is now revoked.
    ReuseDetected { user_id: Uuid, family_id: Uuid },
    /// Unknown, expired, or from a revoked family.
    Invalid,
}

struct PresentedRow {
    id: Uuid,
    family_id: Uuid,
    user_id: Uuid,
    expired: bool,
    rotated: bool,
    family_revoked: bool,
}

pub async fn rotate(
    db: &PgPool,
    presented: &str,
    ttl: chrono::Duration,
) -> Result<Rotation, sqlx::Error> {
    if !presented.starts_with(PREFIX) || presented.len() > 128 {
        return Ok(Rotation::Invalid);
    }
    let mut tx = db.begin().await?;
    // The row lock makes two concurrent refreshes with one token see each
    // other: the second finds it spent.
    let row = sqlx::query_as!(
        PresentedRow,
        r#"select t.id, t.family_id, f.user_id, t.expires_at <= now() as "expired!",
                t.rotated_at is not null as "rotated!",
                f.revoked_at is not null as "family_revoked!"
         from refresh_tokens t join token_families f on f.id = t.family_id
         where t.token_hash = $1
         for update of t"#,
        token_hash(presented),
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    if row.family_revoked || row.expired {
        return Ok(Rotation::Invalid);
    }
    if row.rotated {
        revoke_family_in(&mut tx, row.family_id, "refresh token reuse").await?;
        tx.commit().await?;
        return Ok(Rotation::ReuseDetected {
            user_id: row.user_id,
            family_id: row.family_id,
        });
    }
    sqlx::query!(
        "update refresh_tokens set rotated_at = now() where id = $1",
        row.id
    )
    .execute(&mut *tx)
    .await?;
    let refresh = insert_token(&mut tx, row.family_id, ttl).await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        user_id: row.user_id,
        refresh,
    })
}

async fn revoke_family_in(
    conn: &mut sqlx::PgConnection,
    family_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update token_families set revoked_at = now(), revoke_reason = $2
         where id = $1 and revoked_at is null",
        family_id,
        reason,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a session: every token of the family stops working at once.
pub async fn revoke_family(
    db: &PgPool,
    family_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let mut conn = db.acquire().await?;
    revoke_family_in(&mut conn, family_id, reason).await
}

/// The family a refresh token belongs to, if the token is known.
pub async fn family_of(db: &PgPool, presented: &str) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
    let row = sqlx::query!(
        "select f.id, f.user_id from refresh_tokens t join token_families f on f.id = t.family_id
         where t.token_hash = $1",
        token_hash(presented),
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.id, r.user_id)))
}

/// What an access token's bearer may do right now: read on every request so
/// suspension, role changes and logouts apply at once on every instance.
pub struct SessionState {
    pub account_id: Uuid,
    pub tier: Tier,
    pub limits_override: LimitsOverride,
    pub suspended: bool,
    pub role: Role,
    pub family_revoked: bool,
}

struct SessionRow {
    account_id: Uuid,
    tier: String,
    limits_override: sqlx::types::Json<LimitsOverride>,
    suspended: bool,
    role: String,
    family_revoked: bool,
}

pub async fn state(
    db: &PgPool,
    user_id: Uuid,
    family_id: Uuid,
) -> Result<Option<SessionState>, sqlx::Error> {
    let row = sqlx::query_as!(
        SessionRow,
        r#"select a.id as account_id, a.tier,
                a.limits_override as "limits_override: sqlx::types::Json<LimitsOverride>",
                a.suspended_at is not null as "suspended!",
                u.role, f.revoked_at is not null as "family_revoked!"
         from users u
         join accounts a on a.id = u.account_id
         join token_families f on f.user_id = u.id and f.id = $2
         where u.id = $1"#,
        user_id,
        family_id,
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(SessionState {
            account_id: r.account_id,
            tier: super::accounts::parse_tier(&r.tier)?,
            limits_override: r.limits_override.0,
            suspended: r.suspended,
            role: Role::parse(&r.role).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown role {:?} in database", r.role).into())
            })?,
            family_revoked: r.family_revoked,
        })
    })
    .transpose()
}
