//! API keys: created (the plaintext shown once), listed, rotated and
//! revoked per account, and a presented key authenticated on each request.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::api_key::{self, NewKey};
use crate::auth::limits::{LimitsOverride, Tier};
use crate::auth::scope::{Role, Scopes};

/// A key as its owner may see it: never the secret, nor its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: Uuid,
    pub name: String,
    /// The public start of the key (`voxq_<id>`), to recognise it by.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

struct KeyRow {
    id: Uuid,
    name: String,
    public_id: String,
    scopes: Vec<String>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for KeyInfo {
    fn from(row: KeyRow) -> Self {
        KeyInfo {
            id: row.id,
            name: row.name,
            prefix: format!("{}{}", api_key::PREFIX, row.public_id),
            scopes: row.scopes,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A new key and its plaintext, the only copy that will ever exist.
pub struct CreatedKey {
    pub info: KeyInfo,
    pub key: NewKey,
}

pub struct KeySpec<'a> {
    pub account_id: Uuid,
    pub name: &'a str,
    pub scopes: &'a Scopes,
    pub created_by_user: Option<Uuid>,
}

async fn insert(
    conn: &mut sqlx::PgConnection,
    pepper: &SecretString,
    spec: &KeySpec<'_>,
) -> Result<CreatedKey, sqlx::Error> {
    let key = api_key::generate(pepper);
    let row = sqlx::query_as!(
        KeyRow,
        "insert into api_keys (id, account_id, public_id, key_hash, name, scopes, created_by_user)
         values ($1, $2, $3, $4, $5, $6, $7)
         returning id, name, public_id, scopes, created_at, last_used_at, expires_at, revoked_at",
        Uuid::now_v7(),
        spec.account_id,
        key.public_id,
        key.hash,
        spec.name,
        &spec.scopes.names(),
        spec.created_by_user,
    )
    .fetch_one(conn)
    .await?;
    Ok(CreatedKey {
        info: row.into(),
        key,
    })
}

pub async fn create(
    db: &PgPool,
    pepper: &SecretString,
    spec: &KeySpec<'_>,
) -> Result<CreatedKey, sqlx::Error> {
    let mut conn = db.acquire().await?;
    insert(&mut conn, pepper, spec).await
}

pub async fn list(db: &PgPool, account_id: Uuid) -> Result<Vec<KeyInfo>, sqlx::Error> {
    let rows = sqlx::query_as!(
        KeyRow,
        "select id, name, public_id, scopes, created_at, last_used_at, expires_at, revoked_at
         from api_keys where account_id = $1 order by created_at, id",
        account_id,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(KeyInfo::from).collect())
}

/// One key of the account, if it has it.
pub async fn get(db: &PgPool, account_id: Uuid, id: Uuid) -> Result<Option<KeyInfo>, sqlx::Error> {
    let row = sqlx::query_as!(
        KeyRow,
        "select id, name, public_id, scopes, created_at, last_used_at, expires_at, revoked_at
         from api_keys where id = $1 and account_id = $2",
        id,
        account_id,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(KeyInfo::from))
}

/// Replaces a live key with a new one of the same name and scopes. The old
/// key stops working at once (`grace` zero) or when the grace period ends.
/// `None` when the account has no such live key.
pub async fn rotate(
    db: &PgPool,
    pepper: &SecretString,
    account_id: Uuid,
    id: Uuid,
    grace: chrono::Duration,
) -> Result<Option<(CreatedKey, KeyInfo)>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let old = sqlx::query!(
        "select name, scopes, created_by_user from api_keys
         where id = $1 and account_id = $2 and revoked_at is null
           and (expires_at is null or expires_at > now()) and rotated_to is null
         for update",
        id,
        account_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(old) = old else {
        return Ok(None);
    };
    let scopes = Scopes::from_stored(&old.scopes);
    let created = insert(
        &mut tx,
        pepper,
        &KeySpec {
            account_id,
            name: &old.name,
            scopes: &scopes,
            created_by_user: old.created_by_user,
        },
    )
    .await?;
    let old = sqlx::query_as!(
        KeyRow,
        "update api_keys set rotated_to = $2,
            revoked_at = case when $3 <= interval '0' then now() else null end,
            expires_at = case when $3 <= interval '0' then expires_at else now() + $3 end
         where id = $1
         returning id, name, public_id, scopes, created_at, last_used_at, expires_at, revoked_at",
        id,
        created.info.id,
        // The macros know interval only as PgInterval; chrono's Duration
        // encodes to the same interval.
        grace as _,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((created, old.into())))
}

/// Revokes a key of the account at once; `None` if there is no such key.
pub async fn revoke(
    db: &PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<KeyInfo>, sqlx::Error> {
    let row = sqlx::query_as!(
        KeyRow,
        "update api_keys set revoked_at = coalesce(revoked_at, now())
         where id = $1 and account_id = $2
         returning id, name, public_id, scopes, created_at, last_used_at, expires_at, revoked_at",
        id,
        account_id,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(KeyInfo::from))
}

/// A live key's identity and what its account may do.
pub struct KeyAuth {
    pub key_id: Uuid,
    pub account_id: Uuid,
    pub scopes: Scopes,
    pub tier: Tier,
    pub limits_override: LimitsOverride,
    pub suspended: bool,
    /// The user whose authority the key carries, if a user made it.
    pub created_by_user: Option<Uuid>,
}

struct AuthRow {
    id: Uuid,
    account_id: Uuid,
    key_hash: Vec<u8>,
    scopes: Vec<String>,
    created_by_user: Option<Uuid>,
    /// The creating user's role now; null when the user was removed.
    creator_role: Option<String>,
    stale: bool,
    tier: String,
    limits_override: sqlx::types::Json<LimitsOverride>,
    suspended: bool,
}

/// The key's identity, if the presented key is valid and live. One read per
/// request: revocation and suspension apply at once on every instance.
pub async fn authenticate(
    db: &PgPool,
    pepper: &SecretString,
    presented: &str,
) -> Result<Option<KeyAuth>, sqlx::Error> {
    let Some(parsed) = api_key::parse(presented) else {
        return Ok(None);
    };
    // `stale` says whether last-used tracking needs a write: at most one per
    // key per minute, so most requests cost this single read. The role is
    // marked nullable: Postgres reports users.role as not null, which the
    // left join does not keep.
    let row = sqlx::query_as!(
        AuthRow,
        r#"select k.id, k.account_id, k.key_hash, k.scopes, k.created_by_user,
                u.role as "creator_role?",
                k.last_used_at is null or k.last_used_at < now() - interval '1 minute' as "stale!",
                a.tier, a.limits_override as "limits_override: sqlx::types::Json<LimitsOverride>",
                a.suspended_at is not null as "suspended!"
         from api_keys k join accounts a on a.id = k.account_id
              left join users u on u.id = k.created_by_user and u.account_id = k.account_id
         where k.public_id = $1 and k.revoked_at is null
           and (k.expires_at is null or k.expires_at > now())"#,
        parsed.public_id,
    )
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if !parsed.matches(pepper, &row.key_hash) {
        return Ok(None);
    }
    if row.stale {
        sqlx::query!(
            "update api_keys set last_used_at = now() where id = $1",
            row.id
        )
        .execute(db)
        .await?;
    }
    let scopes = effective_scopes(&row)?;
    Ok(Some(KeyAuth {
        key_id: row.id,
        account_id: row.account_id,
        scopes,
        created_by_user: row.created_by_user,
        tier: super::accounts::parse_tier(&row.tier)?,
        limits_override: row.limits_override.0,
        suspended: row.suspended,
    }))
}

/// What a key may do now: its own scopes, cut down to what its creating
/// user holds today. A key whose user was removed keeps none, so demoting or
/// removing a user takes the same powers from every key the user made.
fn effective_scopes(row: &AuthRow) -> Result<Scopes, sqlx::Error> {
    let stored = Scopes::from_stored(&row.scopes);
    if row.created_by_user.is_none() {
        return Ok(stored);
    }
    let Some(role) = &row.creator_role else {
        return Ok(Scopes::default());
    };
    let role = Role::parse(role)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown role {role:?} in database").into()))?;
    Ok(stored.intersection(&Scopes::for_role(role)))
}
