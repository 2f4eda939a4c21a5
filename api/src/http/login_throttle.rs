//! Failed-login throttling that a stranger cannot turn against the owner:
//! OWASP's "device cookies" scheme (Authentication Cheat Sheet, "Account
//! Lockout"; "Slow Down Online Guessing Attacks with Device Cookies").
//!
//! A successful login returns a device token bound to that email. A login
//! that presents a valid one is *trusted*: it is locked out only by failures
//! made with that same token. Logins without one are *untrusted*: failures
//! are counted per email over all untrusted clients, and per client address
//! group. Guessing from anywhere can therefore lock out only untrusted
//! clients for that email; the owner's devices keep working. Counters live
//! in Redis and hold a hash of the email, never the address itself.

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::Result;
use crate::state::AppState;

/// What a login attempt is counted against.
enum Counted {
    /// A device that logged in as this email before.
    Device { key: String },
    /// Anyone else: the email over all untrusted clients, and the address.
    Untrusted {
        email_key: String,
        address_key: String,
    },
}

pub struct LoginThrottle {
    email_hash: String,
    counted: Counted,
}

impl LoginThrottle {
    /// `device_token` is what the client presented, if anything; a token
    /// that is forged, expired or for another email counts as none.
    pub fn new(
        state: &AppState,
        email: &str,
        address_group: &str,
        device_token: Option<&str>,
    ) -> Self {
        let ns = &state.config.common.namespace;
        let email_hash = hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()));
        let counted = match device_token.and_then(|t| verify(state, &email_hash, t)) {
            Some(nonce) => Counted::Device {
                key: format!("{ns}:login-fail:device:{nonce}"),
            },
            None => Counted::Untrusted {
                email_key: format!("{ns}:login-fail:email:{email_hash}"),
                address_key: format!("{ns}:login-fail:ip:{address_group}"),
            },
        };
        Self {
            email_hash,
            counted,
        }
    }

    /// Seconds left of a lockout, if a counter that applies reached its
    /// maximum.
    pub async fn locked_for(&self, state: &AppState) -> Result<Option<u64>> {
        let config = &state.config;
        let checks: Vec<(&str, u64)> = match &self.counted {
            Counted::Device { key } => vec![(key.as_str(), config.login_max_failures)],
            Counted::Untrusted {
                email_key,
                address_key,
            } => vec![
                (email_key.as_str(), config.login_max_failures),
                (address_key.as_str(), config.login_max_failures_per_ip),
            ],
        };
        let mut pipe = redis::pipe();
        for (key, _) in &checks {
            pipe.get(*key).ttl(*key);
        }
        let answers: Vec<(Option<u64>, i64)> = pipe.query_async(&mut state.redis.clone()).await?;
        for ((_, max), (count, ttl)) in checks.iter().zip(answers) {
            if count.unwrap_or(0) >= *max {
                return Ok(Some(
                    u64::try_from(ttl).unwrap_or(config.login_lockout).max(1),
                ));
            }
        }
        Ok(None)
    }

    /// Counts a failure; the window restarts with each, so a lockout lasts
    /// the configured time from the last failure.
    pub async fn fail(&self, state: &AppState) -> Result<()> {
        let lockout = i64::try_from(state.config.login_lockout).unwrap_or(900);
        let mut pipe = redis::pipe();
        for key in self.keys() {
            pipe.incr(key, 1).expire(key, lockout);
        }
        let _: () = pipe.query_async(&mut state.redis.clone()).await?;
        Ok(())
    }

    /// Clears what this client's failures counted toward (not the address
    /// group's, which other people may share), and issues a fresh device
    /// token for the next login.
    pub async fn succeed(&self, state: &AppState) -> Result<String> {
        let cleared = match &self.counted {
            Counted::Device { key } => key,
            Counted::Untrusted { email_key, .. } => email_key,
        };
        let _: () = redis::cmd("DEL")
            .arg(cleared)
            .query_async(&mut state.redis.clone())
            .await?;
        Ok(issue(state, &self.email_hash))
    }

    fn keys(&self) -> Vec<&str> {
        match &self.counted {
            Counted::Device { key } => vec![key],
            Counted::Untrusted {
                email_key,
                address_key,
            } => vec![email_key, address_key],
        }
    }
}

/// `<nonce>.<expiry>.<signature>`: the signature covers the email's hash,
/// so a token works for one email only.
fn issue(state: &AppState, email_hash: &str) -> String {
    let nonce = Uuid::new_v4().simple().to_string();
    let days = i64::from(state.config.login_device_token_days);
    let expires = chrono::Utc::now().timestamp() + days * 86_400;
    let signature = sign(state, email_hash, &nonce, expires);
    format!("{nonce}.{expires}.{signature}")
}

/// The token's nonce, if it is genuine, unexpired and for this email.
fn verify(state: &AppState, email_hash: &str, token: &str) -> Option<String> {
    let mut parts = token.splitn(3, '.');
    let (nonce, expires, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let expires: i64 = expires.parse().ok()?;
    if expires < chrono::Utc::now().timestamp() {
        return None;
    }
    let expected = sign(state, email_hash, nonce, expires);
    let genuine: bool =
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), signature.as_bytes()).into();
    genuine.then(|| nonce.to_owned())
}

fn sign(state: &AppState, email_hash: &str, nonce: &str, expires: i64) -> String {
    // A key of its own, derived from the token secret, so a device token can
    // never pass for anything else signed with that secret.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(state.config.jwt_secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
    mac.update(b"voxq device token\0");
    mac.update(format!("{email_hash}\0{nonce}\0{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
