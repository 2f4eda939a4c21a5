//! The content-addressed result cache: a finished job's result under the
//! SHA-256 of everything that determines it (input bytes, model, the
//! parameters that shape the output), so an identical job is answered
//! without inference.

use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// The cache key of a job. Each part is length-prefixed, so no two
/// different part lists hash the same bytes.
pub fn key(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The cached result, counting the hit.
pub async fn get(db: &PgPool, key: &[u8; 32]) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar!(
        "update result_cache set hits = hits + 1 where key = $1 returning result",
        key.as_slice(),
    )
    .fetch_optional(db)
    .await
}

pub async fn put(
    db: &PgPool,
    key: &[u8; 32],
    model: &str,
    result: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into result_cache (key, model, result) values ($1, $2, $3)
         on conflict (key) do nothing",
        key.as_slice(),
        model,
        result,
    )
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn keys_depend_on_part_boundaries() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"ab", b"c"]), key(&[b"ab", b"c"]));
    }
}
