//! The client's side of the socket: connect, check that the service is ours, handshake, then
//! requests and their replies, with events kept for [`Client::next_event`].

use super::protocol::{
    ClientFrame, Event, Hello, MAX_REQUEST_FRAME, MAX_SERVICE_FRAME, PROTOCOL_VERSION, Reply,
    Request, ServerFrame, Welcome, WireError,
};
use super::wire::{self, FirstFrame};
use super::{ServiceError, my_uid};
use crate::sanitize;
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// How long a client waits for the service's welcome.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the service that completed the handshake.
pub struct Client {
    reader: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    writer: FramedWrite<wire::SocketWriter, LengthDelimitedCodec>,
    next_id: u64,
    events: VecDeque<Event>,
    welcome: Welcome,
    path: PathBuf,
}

fn refused(error: WireError) -> ServiceError {
    ServiceError::Refused {
        kind: error.kind,
        message: sanitize::line(&error.message).into_owned(),
    }
}

fn garbled(detail: impl std::fmt::Display) -> ServiceError {
    ServiceError::Garbled {
        detail: sanitize::line(&detail.to_string()).into_owned(),
    }
}

impl Client {
    /// Connect to the service at `path` and say hello; `client` names this client in the
    /// service's status ("easel 0.1.0 studio").
    pub async fn connect(path: &Path, name: &str) -> Result<Client, ServiceError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    ServiceError::NotRunning {
                        path: path.to_path_buf(),
                    }
                }
                std::io::ErrorKind::PermissionDenied => ServiceError::SocketPermission {
                    path: path.to_path_buf(),
                },
                _ => ServiceError::Io {
                    what: "connection",
                    source: e,
                },
            })?;
        // Whoever listens must be us: a socket of another user's process would see our keys.
        let cred = stream.peer_cred().map_err(ServiceError::io("peer check"))?;
        let me = my_uid();
        if cred.uid() != me {
            return Err(ServiceError::ForeignService {
                path: path.to_path_buf(),
                service: cred.uid(),
                me,
            });
        }
        let (r, w) = stream.into_split();
        let mut client = Client {
            reader: FramedRead::new(r, wire::codec(MAX_SERVICE_FRAME)),
            writer: FramedWrite::new(wire::SocketWriter::new(w), wire::codec(MAX_REQUEST_FRAME)),
            next_id: 1,
            events: VecDeque::new(),
            welcome: Welcome {
                protocol: PROTOCOL_VERSION,
                service: String::new(),
                pid: 0,
            },
            path: path.to_path_buf(),
        };
        let hello = ClientFrame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            client: name.to_string(),
        });
        // A service that refuses us (another uid) may close before reading the hello: the
        // write then fails, but its refusal is still there to read, and says more.
        let sent = client.send(&hello).await;
        let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, client.read_frame()).await {
            Ok(Ok(first)) => first,
            Ok(Err(e)) => return Err(sent.err().unwrap_or(e)),
            Err(_) => return Err(sent.err().unwrap_or(ServiceError::HandshakeTimeout)),
        };
        let Some(loose) = FirstFrame::read(&first) else {
            return Err(garbled("the service's first message is not JSON"));
        };
        // The version first, read loosely: a service of another version may say the rest in a
        // shape this build does not know.
        match (loose.kind.as_str(), loose.protocol()) {
            (_, Some(v)) if v != PROTOCOL_VERSION && loose.kind != "error" => {
                return Err(ServiceError::VersionMismatch {
                    client: PROTOCOL_VERSION,
                    service: v,
                });
            }
            _ => {}
        }
        match wire::decode::<ServerFrame>(&first).map_err(garbled)? {
            ServerFrame::Welcome(w) => client.welcome = w,
            ServerFrame::Refused { error, .. } | ServerFrame::Error { error } => {
                return Err(refused(error));
            }
            other => return Err(garbled(format!("expected a welcome, got {other:?}"))),
        }
        Ok(client)
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Send `request` and wait for its reply. Events that arrive meanwhile are kept for
    /// [`Client::next_event`]. A [`Reply::Failed`] comes back as [`ServiceError::Failed`].
    pub async fn request(&mut self, request: Request) -> Result<Reply, ServiceError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ClientFrame::Request { id, request }).await?;
        loop {
            match self.read_server_frame().await? {
                ServerFrame::Reply { id: got, reply } if got == id => {
                    return match reply {
                        Reply::Failed { error } => Err(ServiceError::Failed {
                            kind: error.kind,
                            message: sanitize::line(&error.message).into_owned(),
                        }),
                        reply => Ok(reply),
                    };
                }
                ServerFrame::Event { event } => self.events.push_back(event),
                ServerFrame::Error { error } => return Err(refused(error)),
                other => return Err(garbled(format!("an unexpected answer: {other:?}"))),
            }
        }
    }

    /// The next event (after `Request::Subscribe`), waiting for one if none is kept.
    pub async fn next_event(&mut self) -> Result<Event, ServiceError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        match self.read_server_frame().await? {
            ServerFrame::Event { event } => Ok(event),
            ServerFrame::Error { error } => Err(refused(error)),
            other => Err(garbled(format!("an unexpected answer: {other:?}"))),
        }
    }

    async fn send(&mut self, frame: &ClientFrame) -> Result<(), ServiceError> {
        let bytes = wire::encode(frame, MAX_REQUEST_FRAME)?;
        self.writer.send(bytes).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                ServiceError::Closed
            }
            _ => ServiceError::Io {
                what: "write",
                source: e,
            },
        })
    }

    async fn read_frame(&mut self) -> Result<bytes::BytesMut, ServiceError> {
        match self.reader.next().await {
            None => Err(ServiceError::Closed),
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(e)) if wire::is_too_large(&e) => Err(garbled(format!(
                "a message over the {MAX_SERVICE_FRAME}-byte limit"
            ))),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                Err(ServiceError::Closed)
            }
            Some(Err(e)) => Err(ServiceError::Io {
                what: "read",
                source: e,
            }),
        }
    }

    async fn read_server_frame(&mut self) -> Result<ServerFrame, ServiceError> {
        let bytes = self.read_frame().await?;
        wire::decode::<ServerFrame>(&bytes).map_err(garbled)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("path", &self.path)
            .field("welcome", &self.welcome)
            .finish_non_exhaustive()
    }
}
