//! A job's way from request to queue: the request validated
//! ([`validation`], refusals typed in [`invalid`]), its model resolved
//! ([`models`], from the workers' catalog), its input and quota
//! ([`inputs`]), then admitted ([`admission`]): under
//! its idempotency key ([`idempotency`]), its quota reserved
//! ([`reservations`]), committed with its message. Uploads are spooled
//! ([`spool`]) on the way in.

pub mod admission;
pub mod idempotency;
pub mod inputs;
pub mod invalid;
pub mod models;
pub mod reservations;
pub mod spool;
pub mod validation;

use voxq_shared::db::jobs::NewJobInput;
use voxq_shared::job::{JobKind, JobParams};
use voxq_shared::quota::Amounts;

/// A validated job, ready to reserve quota for and store.
pub struct Submission<'a> {
    pub kind: JobKind,
    pub params: JobParams,
    pub input: NewJobInput<'a>,
    pub amounts: Amounts,
}
