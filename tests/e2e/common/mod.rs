//! Test harness: each `TestApp` is its own world — a fresh database, its own
//! Redis key prefix and RabbitMQ queue names (one namespace), and its own
//! `voxq-api` and `voxq-worker` processes on free ports. Logs are silent
//! unless `TEST_LOG` is set.

pub mod long_speech;
pub mod proxy;
pub mod receiver;
pub mod speech;
pub mod wer;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;
use voxq_shared::auth::limits::Tier;
use voxq_shared::auth::scope::{Role, Scope, Scopes};

const ADMIN_DB: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const PEPPER: &str = "test-pepper-0123456789";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";

/// Directory of the release binaries that `ops/test.sh` builds before the
/// tests (this test binary lives in `<dir>/deps`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_path_buf()
}

pub fn model_dir() -> PathBuf {
    std::env::var_os("VOXQ_TEST_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/whisper-tiny.en"))
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

/// Model names the tests use, for cleaning up their queues.
pub const TEST_MODELS: &[&str] = &[
    "whisper-tiny.en",
    "whisper-base",
    "whisper-tiny.en-cpp",
    "translate-test",
    "translate-test-spm",
];

/// Standby models of every test API: translate jobs are accepted (and
/// queued) without a translation worker, and audio jobs without a worker.
const STANDBY: &str = "whisper-tiny.en=transcribe+speech_translate,translate-test=translate";

pub struct Options {
    pub worker: bool,
    pub amqp_url: String,
    pub api_env: Vec<(String, String)>,
    /// The worker's models file; without it the worker serves tiny.en.
    pub models_file: Option<PathBuf>,
    pub worker_env: Vec<(String, String)>,
    /// Where the API and worker reach Postgres (`host:port`), e.g. a proxy
    /// the test can cut; the test itself connects directly.
    pub postgres_addr: Option<String>,
    /// The API's and worker's Redis URL, e.g. through a proxy.
    pub redis_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            postgres_addr: None,
            redis_url: None,
            worker: true,
            amqp_url: AMQP_URL.into(),
            api_env: Vec::new(),
            models_file: None,
            worker_env: Vec::new(),
        }
    }
}

/// Where ops/fetch-models.sh puts the models.
pub fn models_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Writes a models file for a test worker.
pub fn models_file(dir: &std::path::Path, body: &str) -> PathBuf {
    let path = dir.join("models.toml");
    std::fs::write(&path, body).expect("write models file");
    path
}

pub struct TestApp {
    pub api_url: String,
    /// The API's metrics listener.
    pub api_metrics_url: String,
    pub worker_url: Option<String>,
    pub db: PgPool,
    pub namespace: String,
    pub http: reqwest::Client,
    db_name: String,
    api_env: Vec<(String, String)>,
    worker_env: Vec<(String, String)>,
    /// Index of the running worker in `children`.
    worker: Option<usize>,
    /// APIs started after the first, with their indices in `children`.
    extra_apis: Vec<(String, usize)>,
    children: Vec<Child>,
}

async fn flush_namespace(namespace: &str) {
    let Ok(client) = redis::Client::open(REDIS_URL) else {
        return;
    };
    let Ok(mut redis) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}:*"))
        .query_async(&mut redis)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
    }
}

/// Set in a test's environment for a process: it runs under this address
/// space limit (in MiB), through `prlimit`, so an allocation bomb would
/// kill it instead of the machine.
pub const ADDRESS_SPACE_MB: &str = "VOXQ_TEST_ADDRESS_SPACE_MB";

/// A started binary's addresses, from its "listening" log line.
struct Listening {
    url: String,
    /// The API's metrics listener (the worker's `url` serves its metrics).
    metrics_url: Option<String>,
}

/// Starts a binary and waits for its "listening" log line to learn its port.
fn spawn(name: &str, envs: &[(String, String)], args: &[&str]) -> (Child, Listening) {
    let limit = envs
        .iter()
        .find(|(k, _)| k == ADDRESS_SPACE_MB)
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let mut command = match limit {
        Some(mb) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--as={}", mb * 1024 * 1024))
                .arg("--")
                .arg(bin_dir().join(name));
            c
        }
        None => Command::new(bin_dir().join(name)),
    };
    let mut child = command
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name} (run ops/test.sh, which builds it): {e}"));
    let (tx, rx) = mpsc::channel::<String>();
    let show = std::env::var_os("TEST_LOG").is_some();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let tag = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if show {
                eprintln!("[{tag}] {line}");
            }
            let _ = tx.send(line);
        }
    });
    let tag = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[{tag} stderr] {line}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not start listening");
        };
        if line.contains("listening") {
            let log: Value = serde_json::from_str(&line).expect("JSON log line");
            let addr = log["addr"].as_str().expect("addr field").to_owned();
            let metrics_url = log["metrics_addr"].as_str().map(|a| format!("http://{a}"));
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            let url = format!("http://{addr}");
            return (child, Listening { url, metrics_url });
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    /// An API without a worker: accepted jobs stay queued.
    pub async fn spawn_without_worker() -> Self {
        Self::spawn_with(Options {
            worker: false,
            ..Options::default()
        })
        .await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let db_name = format!("voxq_test_{}", Uuid::new_v4().simple());
        let namespace = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
        let db_url = format!("postgres://postgres:postgres@127.0.0.1:5432/{db_name}");
        voxq_shared::db::create_database_if_missing(&db_url)
            .await
            .expect("create test database");
        let db = voxq_shared::db::connect(&db_url, 4).await.expect("connect");
        voxq_shared::db::MIGRATOR.run(&db).await.expect("migrate");

        let mut env: Vec<(String, String)> = vec![
            (
                "VOXQ_DATABASE_URL".into(),
                match &options.postgres_addr {
                    Some(addr) => db_url.replace("127.0.0.1:5432", addr),
                    None => db_url,
                },
            ),
            (
                "VOXQ_REDIS_URL".into(),
                options
                    .redis_url
                    .clone()
                    .unwrap_or_else(|| REDIS_URL.into()),
            ),
            ("VOXQ_AMQP_URL".into(), options.amqp_url.clone()),
            ("VOXQ_NAMESPACE".into(), namespace.clone()),
            ("VOXQ_KEY_PEPPER".into(), PEPPER.into()),
            ("VOXQ_JWT_SECRET".into(), JWT_SECRET.into()),
            ("VOXQ_LOG".into(), "info".into()),
        ];
        let mut api_env = env.clone();
        api_env.push(("VOXQ_API_BIND".into(), "127.0.0.1:0".into()));
        api_env.push(("VOXQ_API_METRICS_BIND".into(), "127.0.0.1:0".into()));
        api_env.push(("VOXQ_STANDBY_MODELS".into(), STANDBY.into()));
        api_env.extend(options.api_env.iter().cloned());
        let (api, listening) = spawn("voxq-api", &api_env, &[]);
        let mut children = vec![api];
        let mut worker_url = None;
        let mut worker = None;
        env.push(("VOXQ_WORKER_METRICS_BIND".into(), "127.0.0.1:0".into()));
        match &options.models_file {
            Some(file) => env.push(("VOXQ_MODELS_FILE".into(), file.display().to_string())),
            None => env.push(("VOXQ_MODEL_DIR".into(), model_dir().display().to_string())),
        }
        env.push(("VOXQ_THREADS".into(), "2".into()));
        // Tests run many workers on few cores: OpenMP threads that spin
        // while they wait (the default) starve the other processes.
        env.push(("OMP_WAIT_POLICY".into(), "PASSIVE".into()));
        env.push((
            "VOXQ_VAD_MODEL".into(),
            models_root().join("silero-vad.bin").display().to_string(),
        ));
        env.extend(options.worker_env.iter().cloned());
        if options.worker {
            let (child, listening) = spawn("voxq-worker", &env, &[]);
            worker = Some(children.len());
            children.push(child);
            worker_url = Some(listening.url);
        }
        Self {
            api_metrics_url: listening
                .metrics_url
                .expect("voxq-api logs its metrics address"),
            api_url: listening.url,
            worker_url,
            db,
            namespace,
            http: reqwest::Client::new(),
            db_name,
            api_env,
            worker_env: env,
            worker,
            extra_apis: Vec::new(),
            children,
        }
    }

    /// Starts a worker (another one, or again after [`Self::kill_worker`]).
    pub fn start_worker(&mut self) {
        let (child, listening) = spawn("voxq-worker", &self.worker_env, &[]);
        self.worker = Some(self.children.len());
        self.children.push(child);
        self.worker_url = Some(listening.url);
    }

    /// Starts one more worker, with `env` over the usual environment
    /// (another models file, say); returns its metrics URL. The primary
    /// worker stays the one `worker_metrics` reads.
    pub fn start_extra_worker(&mut self, env: &[(&str, &str)]) -> String {
        let mut worker_env = self.worker_env.clone();
        worker_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (child, listening) = spawn("voxq-worker", &worker_env, &[]);
        self.children.push(child);
        listening.url
    }

    /// Waits for the running worker to exit by itself, at most `timeout`;
    /// returns whether it did.
    pub fn worker_exited(&mut self, timeout: Duration) -> bool {
        let index = self.worker.expect("a running worker");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.children[index].try_wait() {
                self.worker = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Messages waiting in this namespace's dead-letter queue.
    pub async fn dead_letters(&self) -> u32 {
        let conn = voxq_shared::queue::connect(AMQP_URL).await.expect("amqp");
        let channel = conn.create_channel().await.expect("channel");
        let topology = voxq_shared::queue::Topology::new(&self.namespace);
        let queue = channel
            .queue_declare(
                &topology.dead_letter_queue,
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .expect("dead-letter queue");
        let _ = conn.close(200, "done").await;
        queue.message_count()
    }

    /// Sends `signal` (`KILL`, `TERM`) to the running worker and waits for it
    /// to exit, at most `timeout`; returns whether it exited.
    pub fn signal_worker(&mut self, signal: &str, timeout: Duration) -> bool {
        let index = self.worker.take().expect("a running worker");
        let child = &mut self.children[index];
        let status = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

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

    /// Any request, with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        self.call_at(&self.api_url, method, path, token, body).await
    }

    /// [`Self::call`] against another API instance.
    pub async fn call_at(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// `GET path` as `token`, asserting a 200; the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let response = self
            .call(reqwest::Method::GET, path, Some(token), None)
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Logs in, asserting a 200, and returns the token answer.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .call(
                reqwest::Method::POST,
                "/v1/auth/login",
                None,
                Some(serde_json::json!({ "email": email, "password": password })),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Starts one more `voxq-api` on the same database, Redis namespace and
    /// broker, and returns its base URL.
    pub fn spawn_second_api(&mut self) -> String {
        let (child, listening) = spawn("voxq-api", &self.api_env, &[]);
        let url = listening.url;
        self.children.push(child);
        self.extra_apis.push((url.clone(), self.children.len() - 1));
        url
    }

    /// `kill -9` of an API started by [`Self::spawn_second_api`].
    pub fn kill_api(&mut self, url: &str) {
        let index = self
            .extra_apis
            .iter()
            .find(|(u, _)| u == url)
            .map(|(_, i)| *i)
            .expect("an extra API");
        let child = &mut self.children[index];
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Deletes every Redis key of this test's namespace: what a Redis
    /// restart without persistence does to a deployment.
    pub async fn flush_redis(&self) {
        flush_namespace(&self.namespace).await;
    }

    /// Submits a translate job of `text`.
    pub async fn submit_text(&self, key: &str, text: &str) -> reqwest::Response {
        self.call(
            reqwest::Method::POST,
            "/v1/jobs",
            Some(key),
            Some(serde_json::json!({ "kind": "translate", "text": text, "target_language": "de" })),
        )
        .await
    }

    pub async fn submit_audio(
        &self,
        key: &str,
        bytes: Vec<u8>,
        file_name: &str,
    ) -> reqwest::Response {
        self.submit_form(
            key,
            Form::new().part("file", Part::bytes(bytes).file_name(file_name.to_owned())),
        )
        .await
    }

    pub async fn submit_form(&self, key: &str, form: Form) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/jobs", self.api_url))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    /// Unauthenticated GET of an API path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.api_url))
            .send()
            .await
            .expect("request")
    }

    /// `GET /v1/jobs/{id}?format=…` as `key`.
    pub async fn get_job_format(&self, key: &str, id: &str, format: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/jobs/{id}?format={format}", self.api_url))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// A job rendered as `format`, asserting a 200.
    pub async fn get_job_as(&self, key: &str, id: &str, format: &str) -> String {
        let response = self.get_job_format(key, id, format).await;
        assert_eq!(response.status(), 200, "format {format}");
        response.text().await.expect("text")
    }

    /// `POST /v1/jobs` with a raw body of the given content type.
    pub async fn submit_raw(&self, key: &str, content_type: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/jobs", self.api_url))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub async fn get_job(&self, key: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/jobs/{id}", self.api_url))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// Submits and returns the job id, asserting the 202.
    /// Submits a WAV upload with form `fields`; expects `202`, returns the id.
    pub async fn submit_wav_with(
        &self,
        key: &str,
        wav: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> String {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(wav)
                .file_name("audio.wav")
                .mime_str("audio/wav")
                .expect("mime"),
        );
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let response = self.submit_form(key, form).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 202, "{fields:?}: {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    pub async fn submit_ok(&self, key: &str, bytes: Vec<u8>, file_name: &str) -> String {
        let response = self.submit_audio(key, bytes, file_name).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 202, "{file_name}: {body}");
        assert_eq!(body["status"], "queued");
        assert_eq!(
            body["url"],
            format!("/v1/jobs/{}", body["id"].as_str().expect("id"))
        );
        body["id"].as_str().expect("id").to_owned()
    }

    pub async fn wait_for_job(&self, key: &str, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let body: Value = self.get_job(key, id).await.json().await.expect("json");
            let status = body["status"].as_str().unwrap_or("");
            if matches!(status, "succeeded" | "failed" | "cancelled") {
                return body;
            }
            assert!(Instant::now() < deadline, "job {id} still {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Cancels a running job and waits until its worker has stopped it
    /// (counted as stopped, not processed).
    pub async fn cancel_and_wait_for_stop(&self, key: &str, id: &str, timeout: Duration) {
        let path = format!("/v1/jobs/{id}");
        let cancelled = self
            .call(reqwest::Method::DELETE, &path, Some(key), None)
            .await;
        assert_eq!(cancelled.status(), 200);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let metrics = self.worker_metrics().await;
            if metric_value(&metrics, "voxq_worker_jobs_stopped_total", "cancelled") >= 1.0 {
                assert_eq!(
                    metric_value(&metrics, "voxq_worker_jobs_processed_total", ""),
                    0.0,
                    "{metrics}"
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not stopped:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

    /// The API's metrics (its scrape-time readings at most 5 s old).
    pub async fn api_metrics(&self) -> String {
        self.metrics_at(&self.api_metrics_url).await
    }

    pub async fn worker_metrics(&self) -> String {
        let url = self.worker_url.as_ref().expect("worker running");
        self.metrics_at(url).await
    }

    /// The metrics of the worker whose metrics URL this is.
    pub async fn metrics_at(&self, url: &str) -> String {
        self.http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("worker metrics")
            .text()
            .await
            .expect("text")
    }
}

/// Asserts the one error shape and returns its code.
pub async fn error_code(response: reqwest::Response, status: u16) -> String {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(actual, status, "{body}");
    let message = body["error"]["message"].as_str().expect("error.message");
    assert!(!message.is_empty());
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}

/// Reads a counter's value from Prometheus text, summed over label sets
/// that contain `labels`.
pub fn metric_value(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let db_name = self.db_name.clone();
        let namespace = self.namespace.clone();
        // Drop runs outside any runtime guarantee; clean up on a thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                flush_namespace(&namespace).await;
                if let Ok(admin) = sqlx::PgPool::connect(ADMIN_DB).await {
                    let _ = sqlx::query(&format!("drop database if exists {db_name} with (force)"))
                        .execute(&admin)
                        .await;
                }
                if let Ok(conn) = voxq_shared::queue::connect(AMQP_URL).await {
                    if let Ok(channel) = conn.create_channel().await {
                        let topology = voxq_shared::queue::Topology::new(&namespace);
                        let mut queues: Vec<String> = TEST_MODELS
                            .iter()
                            .flat_map(|m| {
                                voxq_shared::queue::Lane::ALL.map(|l| topology.queue(m, l))
                            })
                            .collect();
                        queues.push(topology.dead_letter_queue.clone());
                        queues.push(topology.dead_letter_sweep_queue.clone());
                        let retries = topology.retry_queues();
                        for q in queues.iter().chain(&retries) {
                            let _ = channel.queue_delete(q, Default::default()).await;
                        }
                        let exchanges = [&topology.exchange, &topology.dead_letter_exchange]
                            .into_iter()
                            .chain(&retries);
                        for x in exchanges {
                            let _ = channel.exchange_delete(x, Default::default()).await;
                        }
                    }
                }
            });
        })
        .join();
    }
}

/// A mono 16-bit WAV of a 440 Hz tone lasting exactly `seconds`.
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

/// The JSON claims inside a JWT, without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

/// Signs `claims` with HS256 under `secret`.
pub fn sign_jwt(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// An unsigned token (`alg: none`) with `claims`.
pub fn unsigned_jwt(claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}
