//! Standard Webhooks signing: `webhook-signature` is `v1,` followed by the
//! base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under
//! the secret's bytes (the base64 after `whsec_`). Several signatures,
//! space-separated, during a secret rotation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// Event types a subscription can filter on.
pub const EVENT_TYPES: [&str; 5] = [
    "job.started",
    "job.progress",
    "job.succeeded",
    "job.failed",
    "job.cancelled",
];

/// A new `whsec_` secret of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

#[derive(Debug, thiserror::Error)]
#[error("not a whsec_ secret")]
pub struct BadSecret;

/// One `v1,<base64>` signature.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, BadSecret> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?)
        .map_err(|_| BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Whether `header` (space-separated signatures) holds a valid signature
/// of the message under `secret`; what a receiver checks.
pub fn verify(secret: &str, header: &str, id: &str, timestamp: i64, body: &[u8]) -> bool {
    let Ok(expected) = sign(secret, id, timestamp, body) else {
        return false;
    };
    header.split(' ').any(|candidate| {
        use subtle::ConstantTimeEq;
        candidate.as_bytes().ct_eq(expected.as_bytes()).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks reference vector (its test suites use it).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_reference_vector() {
        assert_eq!(sign(SECRET, ID, TIMESTAMP, BODY).expect("sign"), SIGNATURE);
        assert!(verify(SECRET, SIGNATURE, ID, TIMESTAMP, BODY));
    }

    #[test]
    fn a_flipped_byte_or_another_secret_fails() {
        let mut body = BODY.to_vec();
        body[3] ^= 1;
        assert!(!verify(SECRET, SIGNATURE, ID, TIMESTAMP, &body));
        assert!(!verify(SECRET, SIGNATURE, ID, TIMESTAMP + 1, BODY));
        let other = new_secret();
        assert!(!verify(&other, SIGNATURE, ID, TIMESTAMP, BODY));
        // During a rotation either signature may match.
        let both = format!(
            "{} {SIGNATURE}",
            sign(&other, ID, TIMESTAMP, BODY).expect("sign")
        );
        assert!(verify(SECRET, &both, ID, TIMESTAMP, BODY));
        assert!(sign("nope", ID, TIMESTAMP, BODY).is_err());
    }
}
