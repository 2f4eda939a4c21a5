//! The quota counters in Redis, where limits are enforced atomically.
//!
//! Submission *reserves* a job's estimated cost with one Lua script, so N
//! concurrent submits at the edge of a quota accept exactly as many as fit.
//! The reservation is stored with the job in Postgres as well; when the job
//! ends, [`Quotas::settle`] swaps the reservation for the measured usage (or
//! just releases it). Postgres is the truth: [`super::ledger::rebuild`]
//! recomputes the counters from it whenever Redis has lost them.
//!
//! Keys, under the deployment's namespace:
//! - `{ns}:q:{account}:d:{yyyy-mm-dd}`: a hash of `u:*` (used) and `r:*`
//!   (reserved) counters, expiring two days after it was built;
//! - `{ns}:q:{account}:inflight`: a hash with one field per unfinished job
//!   (its reservation), so settling is idempotent: only the call that
//!   removes the field changes the counters.
//!
//! Both hashes carry a `built` field; a missing key means "rebuild from
//! Postgres", never "zero".

use chrono::NaiveDate;
use redis::aio::ConnectionManager;
use redis::Script;
use uuid::Uuid;

use super::{Amounts, Counters, Grown, Reservation, ReserveOutcome, Resource};
use crate::auth::limits::Limits;

const RESERVE: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'built') == 0 or redis.call('HEXISTS', KEYS[2], 'built') == 0 then
  return {-1, ''}
end
local function get(field) return tonumber(redis.call('HGET', KEYS[1], field) or '0') end
local lim_req, lim_audio, lim_chars, lim_proc, lim_conc =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local audio, chars, proc = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
-- The in-flight hash holds `built` plus one field per unfinished job.
if redis.call('HLEN', KEYS[2]) > lim_conc then return {1, 'concurrent_jobs'} end
if get('u:requests') + 1 > lim_req then return {1, 'requests'} end
if get('u:audio_ms') + get('r:audio_ms') + audio > lim_audio then return {1, 'audio_seconds'} end
if get('u:text_chars') + get('r:text_chars') + chars > lim_chars then return {1, 'text_chars'} end
if get('u:processing_ms') + get('r:processing_ms') + proc > lim_proc then return {1, 'processing_seconds'} end
redis.call('HINCRBY', KEYS[1], 'u:requests', 1)
redis.call('HINCRBY', KEYS[1], 'r:audio_ms', audio)
redis.call('HINCRBY', KEYS[1], 'r:text_chars', chars)
redis.call('HINCRBY', KEYS[1], 'r:processing_ms', proc)
redis.call('HSET', KEYS[2], ARGV[9], ARGV[10])
-- The account's unfinished jobs, this one included (less the `built` field).
return {0, tostring(redis.call('HLEN', KEYS[2]) - 1)}
"#;

/// Grows an in-flight reservation's audio to its measured length when the
/// day's counters leave room under the limit. The in-flight marker holds
/// what is reserved, so running it again changes nothing.
const GROW_AUDIO: &str = r#"
local marker = redis.call('HGET', KEYS[2], ARGV[1])
if not marker then return 2 end
if redis.call('HEXISTS', KEYS[1], 'built') == 0 then return 3 end
local day, audio, chars, proc = string.match(marker, '^([^|]*)|(%d+)|(%d+)|(%d+)$')
if not day then return 2 end
local old, new = tonumber(audio), tonumber(ARGV[2])
if new <= old then return 1 end
local function get(field) return tonumber(redis.call('HGET', KEYS[1], field) or '0') end
if get('u:audio_ms') + get('r:audio_ms') - old + new > tonumber(ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'r:audio_ms', new - old)
redis.call('HSET', KEYS[2], ARGV[1], day .. '|' .. ARGV[2] .. '|' .. chars .. '|' .. proc)
return 1
"#;

const SETTLE: &str = r#"
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'built') == 1 then
  local names = {'audio_ms', 'text_chars', 'processing_ms'}
  for i, name in ipairs(names) do
    -- `0 - x`, not `-x`: Lua's -0 reaches Redis as "-0", not an integer.
    local reserved = redis.call('HINCRBY', KEYS[1], 'r:' .. name, 0 - tonumber(ARGV[1 + i]))
    if reserved < 0 then redis.call('HSET', KEYS[1], 'r:' .. name, 0) end
    redis.call('HINCRBY', KEYS[1], 'u:' .. name, tonumber(ARGV[4 + i]))
  end
end
return 1
"#;

const INSTALL: &str = r#"
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'built', 1,
  'u:requests', ARGV[2], 'u:audio_ms', ARGV[3], 'u:text_chars', ARGV[4], 'u:processing_ms', ARGV[5],
  'r:audio_ms', ARGV[6], 'r:text_chars', ARGV[7], 'r:processing_ms', ARGV[8])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'built', 1)
for i = 9, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"#;

/// A Redis hash as field/value pairs.
type HashFields<T> = Vec<(String, T)>;

/// Day hashes outlive their day so late settlements still land.
const DAY_TTL_SECONDS: u64 = 2 * 24 * 3600;

#[derive(Clone)]
pub struct Quotas {
    redis: ConnectionManager,
    prefix: String,
}

impl Quotas {
    pub fn new(redis: ConnectionManager, namespace: &str) -> Self {
        Self {
            redis,
            prefix: format!("{namespace}:q:"),
        }
    }

    fn day_key(&self, account: Uuid, day: NaiveDate) -> String {
        format!("{}{account}:d:{day}", self.prefix)
    }

    fn inflight_key(&self, account: Uuid) -> String {
        format!("{}{account}:inflight", self.prefix)
    }

    pub async fn reserve(
        &self,
        reservation: &Reservation,
        limits: &Limits,
    ) -> redis::RedisResult<ReserveOutcome> {
        let a = reservation.amounts;
        let (code, resource): (i64, String) = Script::new(RESERVE)
            .key(self.day_key(reservation.account_id, reservation.day))
            .key(self.inflight_key(reservation.account_id))
            .arg(limits.requests_per_day)
            .arg(limits.audio_seconds_per_day.saturating_mul(1000))
            .arg(limits.text_chars_per_day)
            .arg(limits.processing_seconds_per_day.saturating_mul(1000))
            .arg(limits.concurrent_jobs)
            .arg(a.audio_ms)
            .arg(a.text_chars)
            .arg(a.processing_ms)
            .arg(reservation.job_id.to_string())
            .arg(encode_marker(reservation))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match code {
            0 => ReserveOutcome::Reserved {
                in_flight: resource.parse().unwrap_or(1),
            },
            -1 => ReserveOutcome::NeedsRebuild,
            _ => ReserveOutcome::Exceeded(
                Resource::parse(&resource).unwrap_or(Resource::ConcurrentJobs),
            ),
        })
    }

    /// Ends a job's reservation, adding `used` (zero for a failed or
    /// cancelled job). Idempotent: only the first call for a job counts.
    pub async fn settle(&self, reservation: &Reservation, used: Amounts) -> redis::RedisResult<()> {
        let r = reservation.amounts;
        let _: i64 = Script::new(SETTLE)
            .key(self.day_key(reservation.account_id, reservation.day))
            .key(self.inflight_key(reservation.account_id))
            .arg(reservation.job_id.to_string())
            .arg(r.audio_ms)
            .arg(r.text_chars)
            .arg(r.processing_ms)
            .arg(used.audio_ms)
            .arg(used.text_chars)
            .arg(used.processing_ms)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Replaces an account's counters for `day` and its in-flight set with
    /// `counters`. Callers hold the account's rebuild lock (see
    /// [`super::ledger`]), so no submission is half-done meanwhile.
    pub async fn install(
        &self,
        account: Uuid,
        day: NaiveDate,
        counters: &Counters,
    ) -> redis::RedisResult<()> {
        let install = Script::new(INSTALL);
        let mut script = install.prepare_invoke();
        script
            .key(self.day_key(account, day))
            .key(self.inflight_key(account))
            .arg(DAY_TTL_SECONDS)
            .arg(counters.requests)
            .arg(counters.used.audio_ms)
            .arg(counters.used.text_chars)
            .arg(counters.used.processing_ms)
            .arg(counters.reserved.audio_ms)
            .arg(counters.reserved.text_chars)
            .arg(counters.reserved.processing_ms);
        for r in &counters.inflight {
            script.arg(r.job_id.to_string()).arg(encode_marker(r));
        }
        let _: i64 = script.invoke_async(&mut self.redis.clone()).await?;
        Ok(())
    }

    /// Grows the reservation's audio to `audio_ms` if the account's day
    /// stays within `limit_ms`.
    pub async fn grow_audio(
        &self,
        reservation: &Reservation,
        audio_ms: u64,
        limit_ms: u64,
    ) -> redis::RedisResult<Grown> {
        let answer: i64 = Script::new(GROW_AUDIO)
            .key(self.day_key(reservation.account_id, reservation.day))
            .key(self.inflight_key(reservation.account_id))
            .arg(reservation.job_id.to_string())
            .arg(audio_ms)
            .arg(limit_ms)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match answer {
            0 => Grown::OverLimit,
            1 => Grown::Yes,
            _ => Grown::NeedsRebuild,
        })
    }

    /// True at most once per account every few seconds: whether a refusal
    /// may be checked against Postgres now.
    pub async fn first_to_verify(&self, account: Uuid) -> bool {
        self.first_in(&format!("{}{account}:verified", self.prefix), 10)
            .await
    }

    /// True for the first refusal of `resource` to the account on `day`: the
    /// one worth an audit entry.
    pub async fn first_refusal(&self, account: Uuid, day: NaiveDate, resource: Resource) -> bool {
        let key = format!(
            "{}{account}:audited:{day}:{}",
            self.prefix,
            resource.as_str()
        );
        self.first_in(&key, DAY_TTL_SECONDS).await
    }

    /// True for the first caller to set `key` in `ttl_seconds`; false for
    /// the others and when Redis cannot answer.
    async fn first_in(&self, key: &str, ttl_seconds: u64) -> bool {
        let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl_seconds)
            .query_async(&mut self.redis.clone())
            .await;
        matches!(set, Ok(Some(_)))
    }

    /// Today's counters as Redis holds them; `None` when they need a rebuild.
    pub async fn read(
        &self,
        account: Uuid,
        day: NaiveDate,
    ) -> redis::RedisResult<Option<Counters>> {
        let mut redis = self.redis.clone();
        let (day_fields, inflight): (HashFields<u64>, HashFields<String>) = redis::pipe()
            .hgetall(self.day_key(account, day))
            .hgetall(self.inflight_key(account))
            .query_async(&mut redis)
            .await?;
        if day_fields.is_empty() || inflight.is_empty() {
            return Ok(None);
        }
        let mut c = Counters::default();
        for (field, value) in day_fields {
            match field.as_str() {
                "u:requests" => c.requests = value,
                "u:audio_ms" => c.used.audio_ms = value,
                "u:text_chars" => c.used.text_chars = value,
                "u:processing_ms" => c.used.processing_ms = value,
                "r:audio_ms" => c.reserved.audio_ms = value,
                "r:text_chars" => c.reserved.text_chars = value,
                "r:processing_ms" => c.reserved.processing_ms = value,
                _ => {}
            }
        }
        c.inflight = inflight
            .iter()
            .filter_map(|(job, marker)| decode_marker(account, job, marker))
            .collect();
        Ok(Some(c))
    }
}

/// `day|audio_ms|text_chars|processing_ms`: enough to settle the job later.
fn encode_marker(r: &Reservation) -> String {
    let a = r.amounts;
    format!(
        "{}|{}|{}|{}",
        r.day, a.audio_ms, a.text_chars, a.processing_ms
    )
}

fn decode_marker(account_id: Uuid, job: &str, marker: &str) -> Option<Reservation> {
    let job_id = Uuid::parse_str(job).ok()?;
    let mut parts = marker.split('|');
    let day = parts.next()?.parse().ok()?;
    let mut next = || parts.next().and_then(|p| p.parse::<u64>().ok());
    Some(Reservation {
        job_id,
        account_id,
        day,
        amounts: Amounts {
            audio_ms: next()?,
            text_chars: next()?,
            processing_ms: next()?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::UsageMetric;
    use crate::quota::seconds_until_reset;

    #[test]
    fn markers_round_trip_and_usage_rounds_up_per_quantity() {
        let r = Reservation {
            job_id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            day: NaiveDate::from_ymd_opt(2026, 11, 24).expect("date"),
            amounts: Amounts {
                audio_ms: 1500,
                text_chars: 0,
                processing_ms: 750,
            },
        };
        let back = decode_marker(r.account_id, &r.job_id.to_string(), &encode_marker(&r));
        assert_eq!(back, Some(r));
        let used = Amounts::from_usage(&[
            (UsageMetric::AudioSeconds, 1.0001),
            (UsageMetric::ProcessingSeconds, 0.25),
        ]);
        assert_eq!((used.audio_ms, used.processing_ms), (1001, 250));
        assert!(seconds_until_reset() <= 24 * 3600);
    }
}
