//! A TCP proxy a test can cut and restore: a service going away for one
//! test's processes only, while other tests share the real server. Cut, it
//! drops every connection and stops listening (new connections are
//! refused, as by a stopped server); restored, it listens on the same port.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    up: Arc<watch::Sender<bool>>,
}

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

impl Proxy {
    /// Forwards a free local port to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let first = listen("127.0.0.1:0".parse().expect("addr")).expect("bind proxy");
        let addr = first.local_addr().expect("addr");
        let (up, _) = watch::channel(true);
        let up = Arc::new(up);
        let target = target.to_owned();
        let state = up.clone();
        tokio::spawn(async move {
            let mut listener = Some(first);
            let mut changes = state.subscribe();
            loop {
                let Some(current) = listener.as_ref() else {
                    // Down: wait to be restored, then listen again.
                    if changes.wait_for(|up| *up).await.is_err() {
                        return;
                    }
                    listener = listen(addr).ok();
                    continue;
                };
                tokio::select! {
                    accepted = current.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        let target = target.clone();
                        let mut down = state.subscribe();
                        tokio::spawn(async move {
                            let Ok(server) = TcpStream::connect(&target).await else {
                                return;
                            };
                            let (mut client, mut server) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = down.wait_for(|up| !*up) => {}
                            }
                        });
                    }
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if !*changes.borrow() {
                            listener = None;
                        }
                    }
                }
            }
        });
        Self {
            port: addr.port(),
            up,
        }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// An AMQP URL through this proxy.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}
