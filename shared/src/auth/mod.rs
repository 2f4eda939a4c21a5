//! Identity pieces the API and the admin CLI share: scopes, tiers and their
//! limits, and password hashing and policy.

pub mod limits;
pub mod password;
pub mod scope;
