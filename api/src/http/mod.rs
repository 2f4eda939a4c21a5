//! HTTP plumbing around the routes: who is calling ([`principal`], with
//! [`tokens`] and [`login_throttle`]), what they may send ([`security`],
//! [`rate_limit`], [`extract`], [`drain`]), and how many may wait at once
//! ([`waiters`]); errors in the compatible APIs' shapes ([`reshape`]);
//! the [`stack`] of layers that wraps them all.

pub mod drain;
pub mod extract;
pub mod login_throttle;
pub mod principal;
pub mod rate_limit;
pub mod reshape;
pub mod security;
pub mod stack;
pub mod tokens;
pub mod waiters;
