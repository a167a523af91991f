//! The transport and protocol of the easel service (issue 11): one long-lived process owns a
//! data folder's store and scheduler, and every other easel is a client of it over a private
//! Unix socket.
//!
//! docs/decisions/0005-local-service.md says why a local service and how the protocol is
//! versioned; docs/architecture.md shows the flow.
//!
//! - [`paths`]: where a data folder's socket lives, and its private folder.
//! - [`protocol`]: the messages, the protocol version and the frame caps.
//! - [`wire`]: length-delimited frames (tokio-util's codec) carrying JSON.
//! - [`server`]: bind (with stale-socket detection), accept, uid check, handshake, dispatch to
//!   a [`server::Handler`], event fan-out.
//! - [`client`]: connect, handshake, request/reply, events.
//! - [`host`]: the service process: the engine (store + scheduler) behind a [`Handler`].
//! - [`start`]: finding or starting a data folder's service on demand.
//! - [`remote`]: the engine as a client sees it (a remote store, an order bridge, events).
//! - [`spec`]: a provider (and its key) as it travels with a job.
//! - [`store_call`]: history reads as messages.

pub mod client;
pub mod host;
pub mod paths;
pub mod protocol;
pub mod remote;
pub mod server;
pub mod spec;
pub mod start;
pub mod store_call;
pub mod wire;

pub use client::Client;
pub use paths::{prepare_socket_dir, socket_path, socket_path_in};
pub use protocol::{
    ClientFrame, Credential, ErrorKind, Event, Hello, PROTOCOL_VERSION, Reply, Request,
    ServerFrame, ServiceStatus, StoreAnswer, StoreCall, SubmitJob, Welcome, WireError,
};
pub use server::{Handler, Listener, Peer, Server, ServerConfig};

use std::path::{Path, PathBuf};

/// Paths as shown to people: control characters from an environment variable or folder name
/// never reach the terminal.
fn shown(path: &Path) -> String {
    crate::sanitize::line(&path.display().to_string()).into_owned()
}

/// What can go wrong talking to (or being) the service. Every message says what happened and
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "no easel service is listening at {}; start one with `easel service run` (or let an easel command start it)",
        shown(path)
    )]
    NotRunning { path: PathBuf },

    #[error(
        "an easel service is already listening at {}; connect to it, or stop it with `easel service stop` first",
        shown(path)
    )]
    AlreadyRunning { path: PathBuf },

    #[error(
        "{} exists and is not a socket; easel will not remove it. Move it away and try again",
        shown(path)
    )]
    NotASocket { path: PathBuf },

    #[error(
        "the socket path {} is {len} bytes, longer than a Unix socket allows ({max}); set XDG_RUNTIME_DIR to a short folder (or use a data folder with a shorter path)",
        shown(path)
    )]
    PathTooLong {
        path: PathBuf,
        len: usize,
        max: usize,
    },

    #[error(
        "the service folder {} belongs to uid {owner}, not to you (uid {me}); remove it or set XDG_RUNTIME_DIR to a folder of your own",
        shown(path)
    )]
    FolderNotOwned { path: PathBuf, owner: u32, me: u32 },

    #[error(
        "the data folder {} cannot be used: {source}; check that it exists and is readable",
        shown(path)
    )]
    DataFolder {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "permission denied on the service socket {}; it belongs to another user. Run easel as the user who owns the data folder",
        shown(path)
    )]
    SocketPermission { path: PathBuf },

    #[error(
        "the process at {} runs as uid {service}, not as you (uid {me}); it is not your easel service. Remove the socket and try again",
        shown(path)
    )]
    ForeignService {
        path: PathBuf,
        service: u32,
        me: u32,
    },

    #[error(
        "the easel service speaks protocol version {service}, this easel speaks version {client}: {}",
        if client > service {
            "the running service is older; stop it with `easel service stop` and the next command starts the new one"
        } else {
            "this easel is older than the running service; run the same easel version as the service, or stop the service with `easel service stop`"
        }
    )]
    VersionMismatch { client: u32, service: u32 },

    /// The service refused or ended the connection and said why (text sanitized).
    #[error("the easel service refused: {message}")]
    Refused { kind: ErrorKind, message: String },

    /// A request failed; the service said why (text sanitized). The connection stays usable.
    #[error("{message}")]
    Failed { kind: ErrorKind, message: String },

    /// The service answered something this client cannot read.
    #[error(
        "the easel service sent an unreadable message ({detail}); make sure client and service are the same easel version"
    )]
    Garbled { detail: String },

    #[error("a message of {len} bytes is over the {max}-byte frame limit; send less at once")]
    TooLarge { len: usize, max: usize },

    #[error(
        "the easel service closed the connection; run the command again (it starts a new service if needed)"
    )]
    Closed,

    #[error(
        "the easel service could not start: {detail} (its log: {})",
        shown(log)
    )]
    StartFailed { log: PathBuf, detail: String },

    #[error(
        "the service did not answer the handshake in time; it may be stuck — stop it with `easel service stop --force`"
    )]
    HandshakeTimeout,

    #[error(
        "service socket {what} failed: {source}; check that the socket folder is yours and writable (or set XDG_RUNTIME_DIR), then try again"
    )]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

impl ServiceError {
    fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ServiceError {
        move |source| ServiceError::Io { what, source }
    }
}

/// What to add to a failure to reach the service: a way around it, unless the message already
/// says what to do (a service that could not start names its cause: a damaged database, a full
/// disk).
pub fn hint(e: &ServiceError) -> Option<&'static str> {
    match e {
        ServiceError::StartFailed { .. } | ServiceError::VersionMismatch { .. } => None,
        _ => Some("EASEL_SERVICE=off runs without the service (one easel at a time)"),
    }
}

/// This process's effective uid: peers must match it.
pub fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}
