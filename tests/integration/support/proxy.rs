//! A loopback TCP forwarder that a test can cut, to make a real backend unreachable on demand
//! without stopping the server every other test shares.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<Notify>,
    reset: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Forwards connections on a fresh loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(Notify::new());
        let cut_signal = cut.clone();
        let reset = Arc::new(Notify::new());
        let reset_signal = reset.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        connections.spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                    _ = reset_signal.notified() => {
                        // Live connections drop; new ones are still forwarded.
                        connections.abort_all();
                    }
                    _ = cut_signal.notified() => {
                        // Dropping the listener and every live connection: the backend is gone.
                        connections.abort_all();
                        return;
                    }
                }
            }
        });
        Self {
            addr,
            cut,
            reset,
            task,
        }
    }

    /// Drops every forwarded connection but keeps accepting new ones.
    pub fn reset(&self) {
        self.reset.notify_one();
    }

    /// Closes the listener and every forwarded connection.
    pub async fn cut(self) {
        self.cut.notify_one();
        let _ = self.task.await;
    }
}

/// The `host:port` part of a URL like `scheme://user@host:port/path`.
fn host_port(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = after_scheme.split('/').next().unwrap_or(after_scheme);
    authority.rsplit_once('@').map_or(authority, |(_, r)| r)
}

/// The socket address a URL points at.
pub fn socket_of(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    host_port(url)
        .to_socket_addrs()
        .expect("resolvable")
        .next()
        .expect("an address")
}

/// `url` pointed at `addr` instead of its own host and port.
pub fn through(url: &str, addr: SocketAddr) -> String {
    url.replacen(host_port(url), &addr.to_string(), 1)
}
