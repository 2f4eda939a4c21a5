//! The API's background work beside serving requests: the outbox relay,
//! the webhook dispatcher and the janitor. Started together, and stopped
//! together once serving has ended: each finishes what it holds (the
//! relay its last pass, the dispatcher its sends in flight) and is joined.

pub mod dispatcher;
pub mod janitor;
pub mod outbox;

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::dispatcher::Dispatcher;
use self::janitor::Janitor;
use self::outbox::Relay;

/// How long a stopping API keeps relaying its outbox after the last
/// request has been answered.
const OUTBOX_DRAIN: Duration = Duration::from_secs(10);

pub struct Background {
    pub relay: Relay,
    /// Absent where this instance does not send webhooks.
    pub dispatcher: Option<Dispatcher>,
    pub janitor: Janitor,
    /// How long webhook sends in flight may take to finish at shutdown.
    pub webhook_drain: Duration,
}

/// Background tasks in progress.
pub struct Running {
    stop: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Background {
    pub fn start(self) -> Running {
        let stop = CancellationToken::new();
        let mut tasks = vec![
            (
                "outbox relay",
                tokio::spawn(self.relay.run(stop.clone(), OUTBOX_DRAIN)),
            ),
            ("janitor", tokio::spawn(self.janitor.run(stop.clone()))),
        ];
        if let Some(dispatcher) = self.dispatcher {
            let drain = self.webhook_drain;
            tasks.push((
                "webhook dispatcher",
                tokio::spawn(dispatcher.run(stop.clone(), drain)),
            ));
        }
        Running { stop, tasks }
    }
}

impl Running {
    /// Asks every task to stop and waits until each has.
    pub async fn stop(self) {
        self.stop.cancel();
        for (task, handle) in self.tasks {
            if let Err(e) = handle.await {
                tracing::error!(task, error = %e, "background task crashed");
            }
        }
    }
}
