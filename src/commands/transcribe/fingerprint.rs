//! `Idempotency-Key`s derived from what a submission is: the audio's
//! bytes and the options that shape its result. The same file with the
//! same options always gets the same key, so a run that is interrupted
//! and started again is answered with the jobs it already submitted (the
//! API replays a key's first answer for 24 hours) instead of paying for
//! them twice.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Names this scheme inside the hash, so that a later scheme (other
/// options, another encoding) never collides with this one's keys.
const SCHEME: &[u8] = b"voxq-cli transcribe v1";

/// The digest of a file and its result-shaping options (canonical JSON:
/// the options struct serialises its fields in one fixed order).
pub fn digest(file: &Path, options: &serde_json::Value) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    hasher.update(SCHEME);
    let mut reader = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    let mut buffer = vec![0u8; 1 << 16];
    let mut length: u64 = 0;
    loop {
        let read = reader.read(&mut buffer).map_err(|e| Error::io(file, e))?;
        if read == 0 {
            break;
        }
        length += read as u64;
        hasher.update(&buffer[..read]);
    }
    // Lengths between the parts: no file and options can be shifted into
    // another pair with the same bytes.
    hasher.update(length.to_le_bytes());
    hasher.update(options.to_string().as_bytes());
    Ok(hasher.finalize().into())
}

/// The key of the `generation`th submission of one digest. The first is
/// plain; a job that ended without success (failed, cancelled) is
/// submitted again under the next generation's key, so that a re-run
/// retries it rather than being answered with the old failure forever.
pub fn key(digest: &[u8; 32], generation: u32) -> String {
    let hex = hex::encode(digest);
    if generation <= 1 {
        format!("voxq-cli-{hex}")
    } else {
        format!("voxq-cli-{hex}-{generation}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_the_bytes_and_the_options_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.wav");
        let b = dir.path().join("b.wav");
        std::fs::write(&a, b"RIFF....").expect("write");
        std::fs::write(&b, b"RIFF....").expect("write");
        let options = serde_json::json!({"model": null, "language": "en"});
        let same = digest(&a, &options).expect("digest");
        assert_eq!(
            same,
            digest(&b, &options).expect("digest"),
            "names do not count"
        );
        let other = serde_json::json!({"model": null, "language": "de"});
        assert_ne!(same, digest(&a, &other).expect("digest"));
        assert!(key(&same, 1).len() <= 255);
        assert_ne!(key(&same, 1), key(&same, 2));
    }
}
