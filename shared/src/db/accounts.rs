//! Accounts: each one's tier, limit overrides, result-cache policy,
//! retention and suspension; created, read, listed and changed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::limits::{LimitsOverride, Tier};

/// What an identical repeated job costs the account, or whether it may be
/// answered from the result cache at all.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ResultCachePolicy {
    /// Answered from the cache, billed like a run job.
    #[default]
    Bill,
    /// Answered from the cache, not billed.
    Free,
    /// Opted out: every job runs, and its results are not stored.
    Off,
}

impl ResultCachePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bill => "bill",
            Self::Free => "free",
            Self::Off => "off",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Bill, Self::Free, Self::Off]
            .into_iter()
            .find(|p| p.as_str() == value)
    }
}

pub(crate) fn parse_cache_policy(value: &str) -> Result<ResultCachePolicy, sqlx::Error> {
    ResultCachePolicy::parse(value).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown result cache policy {value:?} in database").into())
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub limits_override: LimitsOverride,
    pub result_cache: ResultCachePolicy,
    /// Days inputs are kept after their job ends; absent: kept.
    pub input_retention_days: Option<i32>,
    /// Days results are kept after their job ends; absent: kept.
    pub result_retention_days: Option<i32>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

struct AccountRow {
    id: Uuid,
    name: String,
    tier: String,
    limits_override: sqlx::types::Json<LimitsOverride>,
    result_cache: String,
    input_retention_days: Option<i32>,
    result_retention_days: Option<i32>,
    suspended_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<AccountRow> for Account {
    type Error = sqlx::Error;

    fn try_from(row: AccountRow) -> Result<Self, sqlx::Error> {
        Ok(Account {
            id: row.id,
            name: row.name,
            tier: parse_tier(&row.tier)?,
            limits_override: row.limits_override.0,
            result_cache: parse_cache_policy(&row.result_cache)?,
            input_retention_days: row.input_retention_days,
            result_retention_days: row.result_retention_days,
            suspended_at: row.suspended_at,
            created_at: row.created_at,
        })
    }
}

pub(crate) fn parse_tier(value: &str) -> Result<Tier, sqlx::Error> {
    Tier::parse(value)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown tier {value:?} in database").into()))
}

// The macros take literal SQL only, so each query spells out AccountRow's
// columns; `limits_override` is named with its Rust type (jsonb decodes to
// a JSON value otherwise).

/// Inside a transaction too (`&mut *tx`), with the account's first user.
pub async fn create(
    db: impl sqlx::PgExecutor<'_>,
    name: &str,
    tier: Tier,
) -> Result<Account, sqlx::Error> {
    let row = sqlx::query_as!(
        AccountRow,
        r#"insert into accounts (id, name, tier) values ($1, $2, $3)
           returning id, name, tier,
                     limits_override as "limits_override: sqlx::types::Json<LimitsOverride>",
                     result_cache, input_retention_days, result_retention_days, suspended_at,
                     created_at"#,
        Uuid::now_v7(),
        name,
        tier.as_str(),
    )
    .fetch_one(db)
    .await?;
    row.try_into()
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query_as!(
        AccountRow,
        r#"select id, name, tier,
                  limits_override as "limits_override: sqlx::types::Json<LimitsOverride>",
                  result_cache, input_retention_days, result_retention_days, suspended_at,
                  created_at
           from accounts where id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await?;
    row.map(Account::try_from).transpose()
}

/// Accounts in creation order, `limit` at a time after the cursor.
pub async fn list(
    db: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    let rows = sqlx::query_as!(
        AccountRow,
        r#"select id, name, tier,
                  limits_override as "limits_override: sqlx::types::Json<LimitsOverride>",
                  result_cache, input_retention_days, result_retention_days, suspended_at,
                  created_at
           from accounts where $1::uuid is null or id > $1 order by id limit $2"#,
        after,
        limit,
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Account::try_from).collect()
}

/// An admin's change; `None` fields stay as they are.
#[derive(Debug, Default)]
pub struct AccountChanges {
    pub tier: Option<Tier>,
    pub limits_override: Option<LimitsOverride>,
    pub suspended: Option<bool>,
    pub result_cache: Option<ResultCachePolicy>,
    /// `Some(0)` keeps inputs for good.
    pub input_retention_days: Option<i32>,
    /// `Some(0)` keeps results for good.
    pub result_retention_days: Option<i32>,
}

pub async fn update(
    db: impl sqlx::PgExecutor<'_>,
    id: Uuid,
    changes: &AccountChanges,
) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query_as!(
        AccountRow,
        r#"update accounts set
            tier = coalesce($2, tier),
            limits_override = coalesce($3, limits_override),
            suspended_at = case when $4::boolean is null then suspended_at
                                when $4 then coalesce(suspended_at, now())
                                else null end,
            result_cache = coalesce($5, result_cache),
            input_retention_days = case when $6::int is null then input_retention_days
                                        when $6 = 0 then null else $6 end,
            result_retention_days = case when $7::int is null then result_retention_days
                                         when $7 = 0 then null else $7 end
         where id = $1
         returning id, name, tier,
                   limits_override as "limits_override: sqlx::types::Json<LimitsOverride>",
                   result_cache, input_retention_days, result_retention_days, suspended_at,
                   created_at"#,
        id,
        changes.tier.map(Tier::as_str),
        // Json<T> is not the macros' jsonb type (a JSON value): bound as is.
        changes.limits_override.as_ref().map(sqlx::types::Json) as _,
        changes.suspended,
        changes.result_cache.map(ResultCachePolicy::as_str),
        changes.input_retention_days,
        changes.result_retention_days,
    )
    .fetch_optional(db)
    .await?;
    row.map(Account::try_from).transpose()
}

pub async fn exists(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from accounts where id = $1) as "exists!""#,
        id
    )
    .fetch_one(db)
    .await
}
