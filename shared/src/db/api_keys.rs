use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use crate::api_key::{self, NewKey};

/// Creates a key for the account. The plaintext in the answer is the only
/// copy that will ever exist.
pub async fn create(
    db: &PgPool,
    pepper: &SecretString,
    account_id: Uuid,
    name: &str,
) -> Result<NewKey, sqlx::Error> {
    let key = api_key::generate(pepper);
    sqlx::query(
        "insert into api_keys (id, account_id, public_id, key_hash, name) values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(account_id)
    .bind(&key.public_id)
    .bind(&key.hash)
    .bind(name)
    .execute(db)
    .await?;
    Ok(key)
}

/// The account a presented key belongs to, if the key is valid and live.
pub async fn authenticate(
    db: &PgPool,
    pepper: &SecretString,
    presented: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let Some(parsed) = api_key::parse(presented) else {
        return Ok(None);
    };
    // `stale` says whether last-used tracking needs a write: at most one per
    // key per minute, so most requests cost this single read.
    let row: Option<(Uuid, Uuid, Vec<u8>, bool)> = sqlx::query_as(
        "select id, account_id, key_hash,
                last_used_at is null or last_used_at < now() - interval '1 minute'
         from api_keys where public_id = $1 and revoked_at is null",
    )
    .bind(parsed.public_id)
    .fetch_optional(db)
    .await?;
    let Some((key_id, account_id, hash, stale)) = row else {
        return Ok(None);
    };
    if !parsed.matches(pepper, &hash) {
        return Ok(None);
    }
    if stale {
        sqlx::query("update api_keys set last_used_at = now() where id = $1")
            .bind(key_id)
            .execute(db)
            .await?;
    }
    Ok(Some(account_id))
}
