//! Where the client connects and with which key: flags, then environment
//! variables, then the profile file, then the default. Resolved once, at
//! start, into a checked [`Connection`].

pub mod profile;

use std::path::PathBuf;

use clap::Args;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// The voxq-api that `ops/setup.sh` starts.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The options every command that talks to voxq-api takes. Flags win
/// over environment variables (clap reads both into one value), and
/// both over the profile file.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// voxq-api base URL [default: the profile's, else http://127.0.0.1:8080].
    /// VOXQ_API_URL, its older name, is read too.
    #[arg(
        long,
        global = true,
        env = "VOXQ_URL",
        alias = "api-url",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub url: Option<String>,
    /// The older name of VOXQ_URL, which scripts and the compose stack set.
    #[arg(
        long = "legacy-api-url",
        env = "VOXQ_API_URL",
        global = true,
        hide = true
    )]
    pub legacy_url: Option<String>,
    /// API key (`voxq_…`) or access token [default: the profile's].
    #[arg(
        long,
        global = true,
        env = "VOXQ_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Connection"
    )]
    pub api_key: Option<SecretString>,
    /// Profile (a table of the profile file) to take the URL and key from.
    #[arg(
        long,
        global = true,
        env = "VOXQ_PROFILE",
        default_value = profile::DEFAULT_PROFILE,
        hide_env_values = true,
        value_name = "NAME",
        help_heading = "Connection"
    )]
    pub profile: String,
    /// Profile file [default: ~/.config/voxq/config.toml, or under
    /// $XDG_CONFIG_HOME].
    #[arg(
        long,
        global = true,
        env = "VOXQ_CONFIG",
        hide_env_values = true,
        value_name = "FILE",
        help_heading = "Connection"
    )]
    pub config: Option<PathBuf>,
}

/// A checked place to send requests, and the key to send with them.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: Url,
    api_key: Option<SecretString>,
}

impl Connection {
    /// Applies the precedence and checks the result. The profile file is
    /// read only here, so commands that never call the API (the admin
    /// ones, completions) never trip over a broken one.
    pub fn resolve(args: &GlobalArgs) -> Result<Self> {
        // Naming the file or a profile means it must be there.
        let named_profile = args.profile != profile::DEFAULT_PROFILE;
        let profile = match args.config.clone().or_else(profile::default_path) {
            Some(path) => {
                profile::load(&path, &args.profile, args.config.is_some() || named_profile)?
            }
            None if named_profile => {
                return Err(Error::Config(format!(
                    "profile {:?} asked for, but there is no profile file (set VOXQ_CONFIG)",
                    args.profile
                )))
            }
            None => profile::Profile::default(),
        };
        let url = args
            .url
            .clone()
            .or_else(|| args.legacy_url.clone())
            .or(profile.url)
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let api_key = args
            .api_key
            .clone()
            .or(profile.api_key)
            .filter(|key| !key.expose_secret().trim().is_empty());
        Ok(Self {
            url: parse_url(&url)?,
            api_key,
        })
    }

    /// A connection without a key, for commands that bring their own.
    pub fn with_key(mut self, key: SecretString) -> Self {
        self.api_key = Some(key);
        self
    }

    /// The key, or how to give one.
    pub fn api_key(&self) -> Result<&SecretString> {
        self.api_key.as_ref().ok_or_else(|| {
            Error::Config(
                "no API key: pass --api-key, set VOXQ_API_KEY, or put api_key in a profile \
                 (see `voxq --help`)"
                    .into(),
            )
        })
    }
}

fn parse_url(value: &str) -> Result<Url> {
    let url = Url::parse(value.trim())
        .map_err(|e| Error::Config(format!("voxq-api URL {value:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::Config(format!(
            "voxq-api URL {value:?}: use http:// or https:// and a host"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_taken() {
        assert!(parse_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_url("https://voxq.example.com/base/").is_ok());
        assert!(parse_url("ftp://example.com").is_err());
        assert!(parse_url("127.0.0.1:8080").is_err());
    }
}
