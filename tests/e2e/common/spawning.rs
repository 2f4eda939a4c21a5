//! Starting a test's world: a fresh database, its own Redis prefix and
//! RabbitMQ names (one namespace), the API (in-process where it can be)
//! and worker processes on free ports; and tearing it all down.
//!
//! Longer than most files: `TestApp` keeps the books of everything a test
//! starts (`children`, `worker`, `extra_apis`, `in_process`, its database
//! and namespace), and the methods that start, signal, kill and restart
//! processes and the `Drop` that tears it all down work on those books
//! together, so that nothing started escapes the teardown.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

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
    /// The API, when it runs in this process rather than as a child.
    in_process: Option<InProcessApi>,
}

/// The API built in the test process (`App::build` on port 0), on a
/// runtime of its own: a test that blocks its thread never stalls it.
struct InProcessApi {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: mpsc::Receiver<()>,
}

impl InProcessApi {
    /// `None` when `env` holds anything that is not an API setting (proxy
    /// variables, an address-space limit): only a process can have those.
    fn start(env: &[(String, String)]) -> Option<(Self, Listening)> {
        let config = api_config(env)?;
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(u16, u16), String>>();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (stopped_tx, stopped) = mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the API");
            runtime.block_on(async move {
                let app = match voxq_api::App::build(config).await {
                    Ok(app) => app,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((app.port(), app.metrics_port())));
                let shutdown = async {
                    let _ = stop_rx.await;
                };
                if let Err(e) = app.run(shutdown).await {
                    eprintln!("[voxq-api in-process] {e:#}");
                }
            });
            let _ = stopped_tx.send(());
        });
        let (port, metrics_port) = ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the in-process API starts")
            .unwrap_or_else(|e| panic!("building the in-process API: {e}"));
        let listening = Listening {
            url: format!("http://127.0.0.1:{port}"),
            metrics_url: Some(format!("http://127.0.0.1:{metrics_port}")),
        };
        Some((
            Self {
                stop: Some(stop),
                stopped,
            },
            listening,
        ))
    }

    /// Stops it as a signal would, and waits (boundedly) for it to drain.
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            let _ = self.stopped.recv_timeout(Duration::from_secs(15));
        }
    }
}

/// The API's settings from environment variables, as the binary would read
/// them: each becomes the flag that declares it. `None` if one is not an
/// API setting.
fn api_config(env: &[(String, String)]) -> Option<voxq_api::config::ApiConfig> {
    use clap::{CommandFactory, Parser};
    let command = voxq_api::config::ApiConfig::command();
    let mut args = vec!["voxq-api".to_owned()];
    // As in a process's environment, a later setting replaces an earlier.
    let mut settings: Vec<&(String, String)> = Vec::new();
    for pair in env {
        settings.retain(|(name, _)| *name != pair.0);
        settings.push(pair);
    }
    for (name, value) in settings {
        let arg = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))?;
        args.push(format!("--{}={value}", arg.get_long()?));
    }
    Some(voxq_api::config::ApiConfig::try_parse_from(args).expect("valid API settings"))
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
        // Tests without a worker need only the API: built in-process.
        let in_process = if options.worker {
            None
        } else {
            InProcessApi::start(&api_env)
        };
        let (mut children, in_process, listening) = match in_process {
            Some((api, listening)) => (Vec::new(), Some(api), listening),
            None => {
                let (api, listening) = spawn("voxq-api", &api_env, &[]);
                (vec![api], None, listening)
            }
        };
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
            in_process,
        }
    }

    /// The test database's URL, for commands that work on it directly.
    pub fn database_url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:5432/{}",
            self.db_name
        )
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
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(api) = &mut self.in_process {
            api.stop();
        }
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
