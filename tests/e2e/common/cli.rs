//! Running the real `voxq` binary against a test's API, in an
//! environment of its own: none of the machine's `VOXQ_*` settings or
//! profile file leak in (its HOME is a fresh folder).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::spawning::TestApp;

/// The settings a user's shell could hold, removed from every run.
const SETTINGS: &[&str] = &[
    "VOXQ_URL",
    "VOXQ_API_URL",
    "VOXQ_API_KEY",
    "VOXQ_PROFILE",
    "VOXQ_CONFIG",
    "VOXQ_DATABASE_URL",
    "VOXQ_KEY_PEPPER",
    "VOXQ_PASSWORD",
    "XDG_CONFIG_HOME",
];

/// How a run ended.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts exit status 0.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

pub struct Voxq {
    /// The fresh HOME.
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Voxq {
    /// `voxq` with `VOXQ_URL` set to the test's API and `VOXQ_API_KEY` to
    /// `key`.
    pub fn new(app: &TestApp, key: &str) -> Self {
        Self::bare()
            .env("VOXQ_URL", &app.api_url)
            .env("VOXQ_API_KEY", key)
    }

    /// `voxq` with no settings at all.
    pub fn bare() -> Self {
        Self {
            home: tempfile::tempdir().expect("a HOME"),
            env: Vec::new(),
        }
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn binary() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_voxq"))
    }

    /// The command, ready to run or spawn.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(Self::binary());
        for name in SETTINGS {
            command.env_remove(name);
        }
        command
            .args(args)
            .env("HOME", self.home.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs to the end (at most ten minutes).
    pub async fn run(&self, args: &[&str]) -> Ran {
        let output = tokio::time::timeout(Duration::from_secs(600), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("voxq {args:?} ran over ten minutes"))
            .expect("voxq runs");
        let ran = Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("[voxq {args:?}] {ran:?}");
        }
        ran
    }
}

impl TestApp {
    /// Jobs of `account` in the test's database.
    pub async fn job_count(&self, account: uuid::Uuid) -> i64 {
        sqlx::query_scalar("select count(*) from jobs where account_id = $1")
            .bind(account)
            .fetch_one(&self.db)
            .await
            .expect("count jobs")
    }
}
