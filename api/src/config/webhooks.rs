//! The webhook dispatcher's settings: retries, timeouts, concurrency and
//! the SSRF guard on endpoint URLs.

/// Webhook delivery (Standard Webhooks) and the SSRF guard on its URLs.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookConfig {
    /// Run the webhook dispatcher in this API process. Any number of
    /// instances may: deliveries are leased, never sent twice at once.
    #[arg(long, env = "VOXQ_WEBHOOK_DISPATCHER", default_value_t = true, action = clap::ArgAction::Set)]
    pub dispatcher: bool,

    /// Internal networks webhooks may reach anyway (comma-separated CIDRs
    /// or addresses, e.g. a receiver inside the cluster); everything
    /// private, loopback, link-local or otherwise internal is refused.
    #[arg(id = "webhook_allow", long = "webhook-allow", env = "VOXQ_WEBHOOK_ALLOW", default_value = "", value_parser = voxq_shared::net_guard::parse_allow_list)]
    pub allow: voxq_shared::net_guard::AllowList,

    /// Accept plain-http webhook URLs (https only by default).
    #[arg(id = "webhook_allow_http", long = "webhook-allow-http", env = "VOXQ_WEBHOOK_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_http: bool,

    /// Seconds between attempts, one entry per retry (jittered by ±20 %; a
    /// longer `Retry-After` wins). The default spans more than a day.
    #[arg(
        long = "webhook-retry-seconds",
        env = "VOXQ_WEBHOOK_RETRY_SECONDS",
        default_value = "5,300,1800,7200,18000,36000,36000",
        value_delimiter = ','
    )]
    pub retry_seconds: Vec<f64>,

    /// An endpoint whose deliveries have failed for this many hours is
    /// disabled (with the reason in `GET /v1/webhooks/{id}`).
    #[arg(
        long = "webhook-disable-after-hours",
        env = "VOXQ_WEBHOOK_DISABLE_AFTER_HOURS",
        default_value_t = 120.0
    )]
    pub disable_after_hours: f64,

    /// Seconds before a receiver that has not answered counts as failed.
    #[arg(
        long = "webhook-timeout",
        env = "VOXQ_WEBHOOK_TIMEOUT",
        default_value_t = 10
    )]
    pub timeout: u64,

    /// Deliveries one dispatcher sends at once.
    #[arg(
        long = "webhook-concurrency",
        env = "VOXQ_WEBHOOK_CONCURRENCY",
        default_value_t = 256,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub concurrency: u32,

    /// Deliveries in flight to one endpoint (or one job `webhook_url`) at
    /// once, over all dispatchers: a slow receiver holds this many sends.
    #[arg(
        long = "webhook-endpoint-concurrency",
        env = "VOXQ_WEBHOOK_ENDPOINT_CONCURRENCY",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub endpoint_concurrency: u32,

    /// Deliveries in flight for one account at once, over all its
    /// endpoints and dispatchers.
    #[arg(
        long = "webhook-account-concurrency",
        env = "VOXQ_WEBHOOK_ACCOUNT_CONCURRENCY",
        default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub account_concurrency: u32,

    /// Webhook endpoints one account may register.
    #[arg(
        long = "webhook-max-endpoints",
        env = "VOXQ_WEBHOOK_MAX_ENDPOINTS",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub max_endpoints: u32,
}

impl WebhookConfig {
    pub fn guard(&self) -> voxq_shared::net_guard::Guard {
        self.allow.guard(self.allow_http)
    }
}
