//! The audit log: who did what, when, from where.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// One entry. `actor` reads `user:<id>`, `key:<id>`, `anonymous` or `system`.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub account_id: Option<Uuid>,
    pub actor: String,
    pub action: &'static str,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Value,
}

pub async fn record(db: &PgPool, event: &AuditEvent) -> Result<(), sqlx::Error> {
    let details = if event.details.is_null() {
        Value::Object(Default::default())
    } else {
        event.details.clone()
    };
    sqlx::query!(
        "insert into audit_log (account_id, actor, action, target, ip, request_id, details)
         values ($1, $2, $3, $4, $5, $6, $7)",
        event.account_id,
        event.actor,
        event.action,
        event.target,
        event.ip,
        event.request_id,
        details,
    )
    .execute(db)
    .await?;
    Ok(())
}
