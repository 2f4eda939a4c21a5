//! The profile file: one TOML table per profile, each naming a voxq-api
//! and the key to use there.
//!
//! ```toml
//! [default]
//! url = "http://127.0.0.1:8080"
//! api_key = "voxq_…"
//!
//! [staging]
//! url = "https://voxq.staging.example.com"
//! api_key = "voxq_…"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// One profile's settings; each is optional, and flags and the
/// environment override it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub url: Option<String>,
    pub api_key: Option<SecretString>,
}

/// Where the profile file is when `--config`/`VOXQ_CONFIG` does not say:
/// `$XDG_CONFIG_HOME/voxq/config.toml`, else `~/.config/voxq/config.toml`.
/// These two are the desktop's conventions, not voxq settings, so they are
/// read here rather than declared as flags.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(base.join("voxq").join("config.toml"))
}

/// The profile `name` from the file at `path`. A missing file is no
/// profile at all, unless the caller insists (`required`: the user named
/// the file or the profile), so that `voxq` works without one.
pub fn load(path: &Path, name: &str, required: bool) -> Result<Profile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Profile::default())
        }
        Err(e) => {
            return Err(Error::Config(format!(
                "reading the profile file {}: {e}",
                path.display()
            )))
        }
    };
    let mut profiles = parse(&text)
        .map_err(|e| Error::Config(format!("the profile file {}: {e}", path.display())))?;
    warn_if_readable_by_others(path, &profiles);
    match profiles.remove(name) {
        Some(profile) => Ok(profile),
        None if !required && name == DEFAULT_PROFILE => Ok(Profile::default()),
        None => {
            let known: Vec<&String> = profiles.keys().collect();
            Err(Error::Config(format!(
                "no profile [{name}] in {} (it has {known:?})",
                path.display()
            )))
        }
    }
}

fn parse(text: &str) -> std::result::Result<BTreeMap<String, Profile>, toml::de::Error> {
    toml::from_str(text)
}

/// A file holding keys should be its owner's alone, as ssh insists for
/// its keys; voxq only warns, since the file is the user's to place.
#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, profiles: &BTreeMap<String, Profile>) {
    use std::os::unix::fs::PermissionsExt;
    if !profiles.values().any(|p| p.api_key.is_some()) {
        return;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: {} holds API keys and others can read it (chmod 600 it)",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path, _: &BTreeMap<String, Profile>) {}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn profiles_are_tables_and_unknown_settings_are_refused() {
        let profiles = parse(
            "[default]\nurl = \"http://a\"\n\n[prod]\nurl = \"https://b\"\napi_key = \"voxq_x\"\n",
        )
        .expect("parses");
        assert_eq!(profiles["default"].url.as_deref(), Some("http://a"));
        assert_eq!(
            profiles["prod"].api_key.as_ref().map(|k| k.expose_secret()),
            Some("voxq_x")
        );
        assert!(parse("[default]\nurll = \"http://a\"\n").is_err());
    }
}
