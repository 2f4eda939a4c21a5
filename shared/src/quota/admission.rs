//! A submission's reservation: reserved in Redis inside a Postgres
//! transaction that holds the account's shared quota lock (see
//! [`super::ledger`]), with counters rebuilt from Postgres when Redis lost
//! them, and a refusal checked once against Postgres before it stands.

use sqlx::{PgPool, Postgres, Transaction};

use super::ledger;
use super::{Quotas, Reservation, ReserveOutcome, Resource};
use crate::auth::limits::Limits;

/// What reserving came to.
pub enum Admission {
    /// Reserved. The transaction holds the account's shared lock: insert
    /// the job in it and commit, or drop it and [`Quotas::release`] the
    /// reservation.
    Reserved {
        tx: Transaction<'static, Postgres>,
        /// The account's unfinished jobs, this one included.
        in_flight: u64,
    },
    /// The limit on `Resource` leaves no room for the job.
    Exceeded(Resource),
}

/// Reserves `reservation` under `limits`. Counters missing from Redis are
/// rebuilt from Postgres; a refusal is checked once against Postgres (at
/// most every few seconds per account), which also heals counters left
/// behind by a process that died mid-job.
pub async fn reserve(
    db: &PgPool,
    quotas: &Quotas,
    reservation: &Reservation,
    limits: &Limits,
) -> crate::Result<Admission> {
    let account = reservation.account_id;
    let mut rebuilt = false;
    loop {
        let tx = ledger::begin_submission(db, account).await?;
        let outcome = quotas.reserve(reservation, limits).await;
        let outcome = match outcome {
            Ok(ReserveOutcome::Reserved { in_flight }) => {
                return Ok(Admission::Reserved { tx, in_flight })
            }
            Ok(outcome) => outcome,
            Err(e) => {
                tx.rollback().await?;
                return Err(e.into());
            }
        };
        // Nothing of ours to keep; release the shared lock before anything
        // else touches the pool or waits for a rebuild.
        tx.rollback().await?;
        let only_if_missing = match outcome {
            ReserveOutcome::NeedsRebuild if !rebuilt => true,
            ReserveOutcome::Exceeded(_) if !rebuilt && quotas.first_to_verify(account).await => {
                false
            }
            ReserveOutcome::Exceeded(resource) => return Ok(Admission::Exceeded(resource)),
            // Still no counters right after a rebuild: Redis is not keeping
            // what it is given.
            _ => return Err(crate::Error::Timeout("the quota store")),
        };
        ledger::rebuild(db, quotas, account, reservation.day, only_if_missing).await?;
        rebuilt = true;
    }
}

impl Quotas {
    /// Gives a reservation back; Postgres stays right if this fails, and
    /// the next rebuild corrects Redis.
    pub async fn release(&self, reservation: &Reservation) {
        if let Err(e) = self.settle(reservation, super::Amounts::default()).await {
            tracing::warn!(job_id = %reservation.job_id, error = %e, "releasing a quota reservation");
        }
    }
}
