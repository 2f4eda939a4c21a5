//! Password hashing (argon2id) and the password rules.
//!
//! Parameters follow OWASP's Password Storage Cheat Sheet (m = 19 MiB,
//! t = 2, p = 1). Rules follow NIST SP 800-63B: a minimum length and
//! nothing about composition; code points counted after NFKC
//! normalisation; known-common and context-specific passwords refused.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use unicode_normalization::UnicodeNormalization;

/// SP 800-63B asks verifiers to accept at least 64 characters; far longer
/// inputs only cost hashing time.
pub const MAX_LENGTH: usize = 128;

const COMMON: &str = include_str!("common_passwords.txt");

fn hasher() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: OWASP's first recommended argon2id setting.
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn normalise(password: &str) -> String {
    password.nfkc().collect()
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) to store.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher()
        .hash_password(normalise(password).as_bytes(), &salt)?
        .to_string())
}

/// Constant-time check of a password against a stored PHC string.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    hasher()
        .verify_password(normalise(password).as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a random password, verified against when a login names no
/// existing user, so both answers take the same time.
pub fn dummy_hash() -> String {
    hash("voxq-timing-equaliser-not-a-password").unwrap_or_default()
}

/// Why a new password is refused, worded for the user.
pub fn check_policy(password: &str, min_length: usize, context: &[&str]) -> Result<(), String> {
    let normalised = normalise(password);
    let length = normalised.chars().count();
    if length < min_length {
        return Err(format!(
            "the password must be at least {min_length} characters long"
        ));
    }
    if length > MAX_LENGTH {
        return Err(format!(
            "the password must be at most {MAX_LENGTH} characters long"
        ));
    }
    let lower = normalised.to_lowercase();
    if COMMON.lines().any(|common| common == lower) {
        return Err("this password is too common; choose another".into());
    }
    let mut chars = lower.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err("the password repeats a single character".into());
        }
    }
    for word in context {
        let word = word.to_lowercase();
        if word.chars().count() >= 4 && lower.contains(&word) {
            return Err("the password must not contain your email address or name".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let stored = hash("a long enough passphrase").expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("a long enough passphrase", &stored));
        assert!(!verify("a long enough passphrasE", &stored));
        assert!(!verify("anything", "not a phc string"));
    }

    #[test]
    fn policy_is_about_length_commonness_and_context_not_composition() {
        assert!(check_policy("all lower case words here", 15, &[]).is_ok());
        assert!(check_policy("short", 15, &[]).is_err());
        assert!(check_policy("PasswordPassword", 15, &[]).is_err());
        assert!(check_policy("aaaaaaaaaaaaaaaaaaaa", 15, &[]).is_err());
        assert!(check_policy("my name is alice-smith ok", 15, &["alice-smith"]).is_err());
        assert!(check_policy(&"x1".repeat(100), 15, &[]).is_err());
        // NFKC: a full-width string counts as its plain form.
        assert!(check_policy("ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ", 15, &[]).is_err());
    }
}
