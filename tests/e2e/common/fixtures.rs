//! What tests set up and measure beside the API: accounts, keys and users
//! written to the database, billed usage, generated audio, local servers
//! and proxy settings.

use secrecy::ExposeSecret;
use uuid::Uuid;
use voxq_shared::auth::limits::Tier;
use voxq_shared::auth::scope::{Role, Scope, Scopes};

use super::spawning::{TestApp, PEPPER};

impl TestApp {
    /// A new enterprise account (limits out of the way) and an API key
    /// with every member scope.
    pub async fn new_account(&self) -> (Uuid, String) {
        self.new_account_with(Tier::Enterprise, &Scopes::new(Scope::MEMBER))
            .await
    }

    pub async fn new_account_with(&self, tier: Tier, scopes: &Scopes) -> (Uuid, String) {
        let account = voxq_shared::db::accounts::create(&self.db, "test", tier)
            .await
            .expect("account");
        let key = self.new_key(account.id, scopes).await;
        (account.id, key)
    }

    /// Another key for an existing account.
    pub async fn new_key(&self, account: Uuid, scopes: &Scopes) -> String {
        let created = voxq_shared::db::api_keys::create(
            &self.db,
            &secrecy::SecretString::from(PEPPER),
            &voxq_shared::db::api_keys::KeySpec {
                account_id: account,
                name: "test",
                scopes,
                created_by_user: None,
            },
        )
        .await
        .expect("key");
        created.key.plaintext.expose_secret().to_owned()
    }

    /// An operator account and a key with every scope, `admin` included.
    pub async fn admin_key(&self) -> String {
        self.new_account_with(Tier::Enterprise, &Scopes::new(Scope::ALL))
            .await
            .1
    }

    /// A user who can log in with `email` and `password`.
    pub async fn new_user(&self, account: Uuid, email: &str, password: &str, role: Role) -> Uuid {
        let hash = voxq_shared::auth::password::hash(password).expect("hash");
        voxq_shared::db::users::create(&self.db, account, email, &hash, role)
            .await
            .expect("user")
            .id
    }

    /// The audio seconds a job was billed for.
    pub async fn billed_audio_seconds(&self, id: &str) -> f64 {
        let usage = voxq_shared::db::usage::for_job(&self.db, id.parse().expect("uuid"))
            .await
            .expect("usage");
        usage
            .iter()
            .find(|u| u.metric == "audio_seconds")
            .unwrap_or_else(|| panic!("no audio usage in {usage:?}"))
            .quantity
    }
}

/// Serves `app` on a free local port for the rest of the test; returns
/// the port.
pub async fn serve_local(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local server");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// API and worker settings that let `audio_url`s reach a server the test
/// runs on this machine (plain http on 127.0.0.1).
pub fn local_fetch_env() -> Vec<(String, String)> {
    vec![
        ("VOXQ_FETCH_ALLOW".to_owned(), "127.0.0.1".to_owned()),
        ("VOXQ_FETCH_ALLOW_HTTP".to_owned(), "true".to_owned()),
    ]
}

/// Proxy settings pointing at a port nobody listens on: a process that
/// honoured them could reach nothing, so outbound requests that still
/// arrive prove that voxq ignores the environment's proxies.
pub fn dead_proxies() -> Vec<(String, String)> {
    [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), "http://127.0.0.1:9".to_owned()))
    .collect()
}

/// A mono 16-bit WAV of a 440 Hz tone lasting exactly `seconds`.
pub fn tone_wav(seconds: f64) -> Vec<u8> {
    let rate: u32 = 16_000;
    let samples: Vec<i16> = (0..(seconds * f64::from(rate)) as u32)
        .map(|i| {
            let t = f64::from(i) / f64::from(rate);
            (0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() * 32767.0) as i16
        })
        .collect();
    pcm16_wav(&samples, rate)
}

/// Mono 16-bit samples at `rate` Hz as a WAV file.
pub fn pcm16_wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let bytes = 2 * samples.len() as u32;
    let mut wav = Vec::with_capacity(44 + bytes as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + bytes).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&bytes.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}
