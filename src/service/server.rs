//! The service's side of the socket: bind (replacing a stale socket), accept, check the peer's
//! uid, handshake, then hand each request to a [`Handler`] and fan events out to subscribers.
//!
//! A connection's failure (a malformed or oversized frame, a client killed mid-request) ends
//! that connection only: each runs in its own task, and the accept loop never returns on a
//! client's error.

use super::paths::prepare_socket_dir;
use super::protocol::{
    ClientFrame, ErrorKind, Event, Hello, MAX_REQUEST_FRAME, MAX_SERVICE_FRAME, PROTOCOL_VERSION,
    Reply, Request, ServerFrame, Welcome, WireError,
};
use super::wire::{self, FirstFrame};
use super::{ServiceError, my_uid};
use futures_util::{SinkExt, StreamExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    /// What the client called itself in its hello (sanitized, at most 80 characters).
    pub client: String,
}

/// What the service does with requests. `Subscribe`/`Unsubscribe` are handled by the server
/// with [`Handler::subscribe`]; every other request comes to [`Handler::handle`].
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, peer: &Peer, request: Request) -> Reply;

    /// A receiver of the events to fan out, or `None` when this handler has none.
    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        None
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a new connection may take to say hello.
    pub handshake_timeout: Duration,
    /// The largest frame read from a client.
    pub max_request_frame: usize,
    /// The largest frame written to a client.
    pub max_service_frame: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            handshake_timeout: Duration::from_secs(5),
            max_request_frame: MAX_REQUEST_FRAME,
            max_service_frame: MAX_SERVICE_FRAME,
        }
    }
}

/// A bound service socket. Dropping it removes the socket file, if it is still this one.
#[derive(Debug)]
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file this listener made.
    file: (u64, u64),
    uid: u32,
}

impl Listener {
    /// Bind `path` (its folder made private first), mode 0600. A socket file that nothing
    /// listens on is stale: it is removed and replaced. A live one is
    /// [`ServiceError::AlreadyRunning`]; a file that is not a socket is left alone.
    pub async fn bind(path: &Path) -> Result<Listener, ServiceError> {
        prepare_socket_dir(path)?;
        let inner = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let meta = std::fs::symlink_metadata(path).map_err(ServiceError::io("check"))?;
                if !meta.file_type().is_socket() {
                    return Err(ServiceError::NotASocket {
                        path: path.to_path_buf(),
                    });
                }
                match UnixStream::connect(path).await {
                    Ok(_) => {
                        return Err(ServiceError::AlreadyRunning {
                            path: path.to_path_buf(),
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        std::fs::remove_file(path)
                            .map_err(ServiceError::io("removal of a stale socket"))?;
                        UnixListener::bind(path).map_err(ServiceError::io("bind"))?
                    }
                    Err(source) => {
                        return Err(ServiceError::Io {
                            what: "check",
                            source,
                        });
                    }
                }
            }
            Err(source) => {
                return Err(ServiceError::Io {
                    what: "bind",
                    source,
                });
            }
        };
        // The folder is 0700 already, so nobody else can reach the socket between bind and
        // this chmod.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(ServiceError::io("permissions"))?;
        let meta = std::fs::symlink_metadata(path).map_err(ServiceError::io("check"))?;
        Ok(Listener {
            inner,
            path: path.to_path_buf(),
            file: (meta.dev(), meta.ino()),
            uid: my_uid(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Only our own socket: a newer service may have replaced it already.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.file
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The accept loop.
pub struct Server<H> {
    listener: Listener,
    handler: Arc<H>,
    config: Arc<ServerConfig>,
    clients: Arc<AtomicUsize>,
}

impl<H: Handler> Server<H> {
    pub fn new(listener: Listener, handler: Arc<H>, config: ServerConfig) -> Server<H> {
        Server {
            listener,
            handler,
            config: Arc::new(config),
            clients: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The number of connections that completed the handshake and are still open.
    pub fn clients(&self) -> Arc<AtomicUsize> {
        self.clients.clone()
    }

    /// Accept until `shutdown` is cancelled; then tell every connection the service stops and
    /// remove the socket.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.inner.accept() => match accepted {
                    Ok((stream, _)) => {
                        let conn = Connection {
                            handler: self.handler.clone(),
                            config: self.config.clone(),
                            clients: self.clients.clone(),
                            uid: self.listener.uid,
                            shutdown: shutdown.clone(),
                        };
                        tokio::spawn(conn.serve(stream));
                    }
                    // Out of file descriptors and the like: the listener itself is fine, so
                    // wait a moment rather than spin, and go on.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
            }
        }
        // Let the connections finish (bounded) before the caller goes on to end the process:
        // each sends the answer it is working on — the `stopping` that answers a stop request
        // among them — then the stopping event, and closes. Without this the process could
        // exit first and the client that asked to stop would see a closed connection.
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.clients.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

struct Connection<H> {
    handler: Arc<H>,
    config: Arc<ServerConfig>,
    clients: Arc<AtomicUsize>,
    uid: u32,
    shutdown: CancellationToken,
}

/// Counts a client while it is connected.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

type Writer = FramedWrite<wire::SocketWriter, LengthDelimitedCodec>;

async fn send(writer: &mut Writer, frame: &ServerFrame, max: usize) -> bool {
    match wire::encode(frame, max) {
        Ok(bytes) => writer.send(bytes).await.is_ok(),
        Err(_) => false,
    }
}

/// Send a reply; one too large for a frame becomes a failure saying so (the connection stays).
async fn send_reply(writer: &mut Writer, id: u64, reply: Reply, max: usize) -> bool {
    let frame = ServerFrame::Reply { id, reply };
    match wire::encode(&frame, max) {
        Ok(bytes) => writer.send(bytes).await.is_ok(),
        Err(_) => {
            let failed = ServerFrame::Reply {
                id,
                reply: Reply::Failed {
                    error: WireError::new(
                        ErrorKind::FrameTooLarge,
                        format!(
                            "the answer is over the {max}-byte message limit; ask for fewer records at once"
                        ),
                    ),
                },
            };
            send(writer, &failed, max).await
        }
    }
}

/// Send an event; one too large for a frame (a huge partial image, a preview only) is skipped.
async fn send_event(writer: &mut Writer, event: Event, max: usize) -> bool {
    match wire::encode(&ServerFrame::Event { event }, max) {
        Ok(bytes) => writer.send(bytes).await.is_ok(),
        Err(_) => true,
    }
}

/// What to tell a client whose frame could not be read, if anything (a reset peer is told
/// nothing).
fn read_error(e: &std::io::Error, max: usize) -> Option<WireError> {
    wire::is_too_large(e).then(|| {
        WireError::new(
            ErrorKind::FrameTooLarge,
            format!(
                "a message over the service's {max}-byte limit was sent; the connection is closed. Send smaller requests (reference images as paths)"
            ),
        )
    })
}

fn malformed(what: &str) -> WireError {
    WireError::new(
        ErrorKind::Malformed,
        format!(
            "the service could not read a message ({what}); the connection is closed. Client and service must be the same easel version"
        ),
    )
}

async fn next_event(
    rx: &mut Option<broadcast::Receiver<Event>>,
) -> Result<Event, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl<H: Handler> Connection<H> {
    async fn serve(self, stream: UnixStream) {
        let cred = stream.peer_cred();
        let (r, w) = stream.into_split();
        let mut reader = FramedRead::new(r, wire::codec(self.config.max_request_frame));
        let mut writer = FramedWrite::new(
            wire::SocketWriter::new(w),
            wire::codec(self.config.max_service_frame),
        );
        let max_out = self.config.max_service_frame;
        let refuse = |kind, message: String| ServerFrame::Refused {
            protocol: PROTOCOL_VERSION,
            error: WireError::new(kind, message),
        };

        let (peer_uid, peer_pid) = match cred {
            Ok(c) => (c.uid(), c.pid()),
            Err(e) => {
                let frame = refuse(
                    ErrorKind::PermissionDenied,
                    format!("the service could not check who is connecting ({e}); try again"),
                );
                send(&mut writer, &frame, max_out).await;
                return;
            }
        };
        if peer_uid != self.uid {
            let frame = refuse(
                ErrorKind::PermissionDenied,
                format!(
                    "this easel service belongs to uid {}; connections from uid {peer_uid} are refused. Use your own data folder, or run easel as its owner",
                    self.uid
                ),
            );
            send(&mut writer, &frame, max_out).await;
            return;
        }

        // The handshake.
        let first = match tokio::time::timeout(self.config.handshake_timeout, reader.next()).await {
            Err(_) => {
                let frame = ServerFrame::Error {
                    error: WireError::new(
                        ErrorKind::HandshakeTimeout,
                        "no hello arrived in time; the connection is closed. Connect again",
                    ),
                };
                send(&mut writer, &frame, max_out).await;
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                if let Some(error) = read_error(&e, self.config.max_request_frame) {
                    send(&mut writer, &ServerFrame::Error { error }, max_out).await;
                }
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let hello = match FirstFrame::read(&first) {
            None => {
                let error = malformed("the first message is not JSON");
                send(&mut writer, &ServerFrame::Error { error }, max_out).await;
                return;
            }
            Some(f) if f.kind != "hello" => {
                let frame = refuse(
                    ErrorKind::HandshakeRequired,
                    "the first message must be a hello with the protocol version".into(),
                );
                send(&mut writer, &frame, max_out).await;
                return;
            }
            Some(f) if f.protocol() != Some(PROTOCOL_VERSION) => {
                let theirs = f
                    .protocol()
                    .map_or_else(|| "no version".to_string(), |v| format!("version {v}"));
                let frame = refuse(
                    ErrorKind::VersionMismatch,
                    format!(
                        "this easel service speaks protocol version {PROTOCOL_VERSION}, the client speaks {theirs}; run the same easel version as the service, or stop the service (`easel service stop`) so a new one starts"
                    ),
                );
                send(&mut writer, &frame, max_out).await;
                return;
            }
            Some(_) => match wire::decode::<ClientFrame>(&first) {
                Ok(ClientFrame::Hello(h)) => h,
                _ => {
                    let error = malformed("the hello has the wrong shape");
                    send(&mut writer, &ServerFrame::Error { error }, max_out).await;
                    return;
                }
            },
        };
        let Hello { client, .. } = hello;
        let peer = Peer {
            uid: peer_uid,
            pid: peer_pid,
            client: crate::sanitize::truncate(&crate::sanitize::line(&client), 80).into_owned(),
        };
        let welcome = ServerFrame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            service: format!("easel {}", env!("CARGO_PKG_VERSION")),
            pid: std::process::id(),
        });
        // Counted before the welcome goes out, so a client that has its welcome is counted.
        self.clients.fetch_add(1, Ordering::Relaxed);
        let _counted = Counted(self.clients.clone());
        if !send(&mut writer, &welcome, max_out).await {
            return;
        }

        let mut events: Option<broadcast::Receiver<Event>> = None;
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {
                    send(&mut writer, &ServerFrame::Event { event: Event::Stopping }, max_out).await;
                    return;
                }
                frame = reader.next() => {
                    let bytes = match frame {
                        None => return,
                        Some(Err(e)) => {
                            if let Some(error) = read_error(&e, self.config.max_request_frame) {
                                send(&mut writer, &ServerFrame::Error { error }, max_out).await;
                            }
                            return;
                        }
                        Some(Ok(bytes)) => bytes,
                    };
                    let (id, request) = match wire::decode::<ClientFrame>(&bytes) {
                        Ok(ClientFrame::Request { id, request }) => (id, request),
                        Ok(ClientFrame::Hello(_)) => {
                            let error = malformed("a second hello");
                            send(&mut writer, &ServerFrame::Error { error }, max_out).await;
                            return;
                        }
                        Err(_) => {
                            let error = malformed("not a request this service knows");
                            send(&mut writer, &ServerFrame::Error { error }, max_out).await;
                            return;
                        }
                    };
                    let reply = match request {
                        Request::Subscribe => match self.handler.subscribe() {
                            Some(rx) => {
                                events = Some(rx);
                                Reply::Subscribed
                            }
                            None => Reply::Failed {
                                error: WireError::new(
                                    ErrorKind::Unsupported,
                                    "this service has no events to send yet",
                                ),
                            },
                        },
                        Request::Unsubscribe => {
                            events = None;
                            Reply::Unsubscribed
                        }
                        // Answered even if the client has gone meanwhile: the handler's work
                        // (a submission, a star) is done whole either way.
                        other => self.handler.handle(&peer, other).await,
                    };
                    if !send_reply(&mut writer, id, reply, max_out).await {
                        return;
                    }
                }
                event = next_event(&mut events) => {
                    let event = match event {
                        Ok(e) => e,
                        Err(broadcast::error::RecvError::Lagged(missed)) => Event::Lagged { missed },
                        Err(broadcast::error::RecvError::Closed) => {
                            events = None;
                            continue;
                        }
                    };
                    if !send_event(&mut writer, event, max_out).await {
                        return;
                    }
                }
            }
        }
    }
}
