//! API key format, generation and verification.
//!
//! A key reads `voxq_<id>_<secret><checksum>`:
//! - `voxq_` makes leaked keys easy for secret scanners to spot;
//! - `<id>` (12 base62 characters) is public and finds the row in one
//!   indexed lookup;
//! - `<secret>` (32 base62 characters, about 190 bits) is never stored;
//! - `<checksum>` (6 base62 characters of a CRC32 over everything before it)
//!   rejects typos and random strings before any database work.
//!
//! Only an HMAC-SHA256 of the whole key under a server-side pepper is stored:
//! a fast keyed hash is enough for 190 bits of entropy (argon2 is for
//! low-entropy passwords) and keeps the per-request cost to microseconds.

use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, Rng};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "voxq_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated key: `plaintext` is shown to its owner once.
pub struct NewKey {
    pub public_id: String,
    pub plaintext: SecretString,
    pub hash: Vec<u8>,
}

/// A syntactically valid key whose checksum matches.
pub struct ParsedKey<'a> {
    pub public_id: &'a str,
    full: &'a str,
}

/// The public id only: the whole key is a credential.
impl std::fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedKey")
            .field("public_id", &self.public_id)
            .finish_non_exhaustive()
    }
}

pub fn generate(pepper: &SecretString) -> NewKey {
    let public_id = random_base62(ID_LEN);
    let secret = random_base62(SECRET_LEN);
    let body = format!("{PREFIX}{public_id}_{secret}");
    let plaintext = format!("{body}{}", checksum(&body));
    let hash = hash(pepper, &plaintext);
    NewKey {
        public_id,
        plaintext: SecretString::from(plaintext),
        hash,
    }
}

/// Checks shape and checksum without touching any store.
pub fn parse(key: &str) -> Option<ParsedKey<'_>> {
    let rest = key.strip_prefix(PREFIX)?;
    let (public_id, tail) = rest.split_once('_')?;
    if public_id.len() != ID_LEN
        || tail.len() != SECRET_LEN + CHECKSUM_LEN
        || !public_id.bytes().chain(tail.bytes()).all(is_base62)
    {
        return None;
    }
    let body = &key[..key.len() - CHECKSUM_LEN];
    let given = &key[key.len() - CHECKSUM_LEN..];
    (checksum(body) == given).then_some(ParsedKey {
        public_id,
        full: key,
    })
}

impl ParsedKey<'_> {
    /// Constant-time comparison against the stored hash.
    pub fn matches(&self, pepper: &SecretString, stored_hash: &[u8]) -> bool {
        hash(pepper, self.full).ct_eq(stored_hash).into()
    }
}

fn hash(pepper: &SecretString, key: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(key.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn checksum(body: &str) -> String {
    let mut value = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn random_base62(len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
        .collect()
}

fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper() -> SecretString {
        SecretString::from("test-pepper")
    }

    #[test]
    fn debug_output_shows_the_public_id_not_the_key() {
        let key = generate(&pepper());
        let plaintext = key.plaintext.expose_secret();
        let parsed = parse(plaintext).expect("valid key");
        let shown = format!("{parsed:?}");
        assert!(shown.contains(&key.public_id), "{shown}");
        let secret = &plaintext[PREFIX.len() + ID_LEN + 1..];
        assert!(!shown.contains(secret), "{shown}");
    }

    #[test]
    fn generated_key_parses_and_matches_its_hash() {
        let key = generate(&pepper());
        let parsed = parse(key.plaintext.expose_secret()).expect("valid key");
        assert_eq!(parsed.public_id, key.public_id);
        assert!(parsed.matches(&pepper(), &key.hash));
        assert!(!parsed.matches(&SecretString::from("other"), &key.hash));
    }

    #[test]
    fn a_single_typo_fails_the_checksum() {
        let key = generate(&pepper());
        let text = key.plaintext.expose_secret().to_owned();
        let mut bytes = text.into_bytes();
        let i = PREFIX.len() + ID_LEN + 5;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).expect("ascii");
        assert!(parse(&typo).is_none());
    }

    #[test]
    fn foreign_strings_are_rejected() {
        for s in [
            "",
            "voxq_",
            "Bearer x",
            "sk-123",
            "voxq_abc_def",
            &"x".repeat(5000),
        ] {
            assert!(parse(s).is_none(), "{s:?}");
        }
    }
}
