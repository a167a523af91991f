//! The service's transport and protocol (issue 11): handshake and versions, frame caps, garbage,
//! stale sockets, several clients, clients killed mid-request, and peers of another uid. The
//! engine is not behind the socket yet, so a test handler answers.
//!
//! Two tests run this test binary again as a child process (the child branch is at the top of
//! the test, chosen by `EASEL_TEST_CHILD`): a client killed with SIGKILL, and a client running
//! as another user (`setpriv`, when the tests run as root).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use easel::service::protocol::{MAX_REQUEST_FRAME, WireError};
use easel::service::wire;
use easel::service::{
    Client, ClientFrame, ErrorKind, Event, Handler, Hello, Listener, PROTOCOL_VERSION, Peer, Reply,
    Request, Server, ServerConfig, ServerFrame, ServiceError, ServiceStatus, socket_path_in,
};
use easel::store::Id;
use futures_util::{SinkExt, StreamExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{Notify, broadcast};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// A guard against a hung test, not a wait: every awaited thing should happen long before.
const GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// A handler and a running server
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct TestHandler {
    /// Requests handled (all kinds).
    handled: AtomicUsize,
    /// A `Cancel` waits for `release` after announcing itself on `entered`.
    entered: Notify,
    release: Notify,
    /// `Cancel`s that ran to the end.
    finished: AtomicUsize,
    events: Option<broadcast::Sender<Event>>,
}

#[async_trait::async_trait]
impl Handler for TestHandler {
    async fn handle(&self, _peer: &Peer, request: Request) -> Reply {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match request {
            Request::Status => Reply::Status(ServiceStatus {
                pid: std::process::id(),
                protocol: PROTOCOL_VERSION,
                socket: String::new(),
                uptime_secs: 0,
                clients: 0,
                jobs_running: 0,
                jobs_queued: 0,
                jobs_waiting: 0,
                data_dir: String::new(),
                version: String::new(),
                batches: Vec::new(),
            }),
            Request::Cancel { job } => {
                self.entered.notify_one();
                self.release.notified().await;
                self.finished.fetch_add(1, Ordering::SeqCst);
                Reply::Cancelled { job }
            }
            Request::Star { record, .. } => Reply::Deleted { record, old: None },
            _ => Reply::Failed {
                error: WireError::new(ErrorKind::Unsupported, "not served \x1b[31min tests"),
            },
        }
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        self.events.as_ref().map(|tx| tx.subscribe())
    }
}

struct Running {
    _root: tempfile::TempDir,
    socket: PathBuf,
    handler: Arc<TestHandler>,
    clients: Arc<AtomicUsize>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn paths() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let run = root.path().join("run");
    std::fs::create_dir(&data).unwrap();
    std::fs::create_dir(&run).unwrap();
    let socket = socket_path_in(Some(&run), &data).unwrap();
    (root, socket)
}

async fn start(handler: TestHandler, config: ServerConfig) -> Running {
    let (root, socket) = paths();
    let listener = Listener::bind(&socket).await.unwrap();
    let handler = Arc::new(handler);
    let server = Server::new(listener, handler.clone(), config);
    let clients = server.clients();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    Running {
        _root: root,
        socket,
        handler,
        clients,
        shutdown,
        task,
    }
}

impl Running {
    /// The listener still accepts and answers: a fresh client gets a status.
    async fn assert_alive(&self) {
        assert!(!self.task.is_finished(), "the accept loop ended");
        let mut c = tokio::time::timeout(GUARD, Client::connect(&self.socket, "check"))
            .await
            .unwrap()
            .unwrap();
        let reply = tokio::time::timeout(GUARD, c.request(Request::Status))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(reply, Reply::Status(_)), "{reply:?}");
    }
}

type Raw = Framed<UnixStream, tokio_util::codec::LengthDelimitedCodec>;

/// A connection with framing but no client logic, to send what a real client never would.
async fn raw(socket: &Path) -> Raw {
    let stream = UnixStream::connect(socket).await.unwrap();
    Framed::new(stream, wire::codec(64 << 20))
}

async fn raw_hello(socket: &Path) -> Raw {
    let mut conn = raw(socket).await;
    let hello = ClientFrame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        client: "raw".into(),
    });
    conn.send(wire::encode(&hello, 1 << 20).unwrap())
        .await
        .unwrap();
    let first = read_frame(&mut conn).await.expect("a welcome");
    assert!(matches!(first, ServerFrame::Welcome(_)), "{first:?}");
    conn
}

/// The next frame, or `None` once the service has closed the connection.
async fn read_frame(conn: &mut Raw) -> Option<ServerFrame> {
    match tokio::time::timeout(GUARD, conn.next()).await.unwrap() {
        None => None,
        Some(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
        Some(Err(e)) => panic!("read: {e}"),
        Some(Ok(bytes)) => Some(wire::decode(&bytes).unwrap()),
    }
}

async fn assert_closed(conn: &mut Raw) {
    assert!(
        read_frame(conn).await.is_none(),
        "the connection stayed open"
    );
}

fn fatal_kind(frame: Option<ServerFrame>) -> (ErrorKind, String) {
    match frame {
        Some(ServerFrame::Error { error }) | Some(ServerFrame::Refused { error, .. }) => {
            (error.kind, error.message)
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Handshake and versions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_handshakes_and_gets_answers() {
    let s = start(TestHandler::default(), ServerConfig::default()).await;
    let mut c = Client::connect(&s.socket, "test").await.unwrap();
    assert_eq!(c.welcome().protocol, PROTOCOL_VERSION);
    assert_eq!(c.welcome().pid, std::process::id());
    let reply = c.request(Request::Status).await.unwrap();
    assert!(matches!(reply, Reply::Status(_)), "{reply:?}");
    // A failed request is an error, with the server's text cleaned, and the connection goes on.
    let err = c
        .request(Request::Store {
            call: easel::service::StoreCall::Len,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Failed {
                kind: ErrorKind::Unsupported,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains('\x1b'), "{err}");
    let reply = c.request(Request::Status).await.unwrap();
    assert!(matches!(reply, Reply::Status(_)), "{reply:?}");
    // The socket is private.
    let mode = std::fs::metadata(&s.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(s.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[tokio::test]
async fn a_client_of_another_version_is_told_clearly() {
    let s = start(TestHandler::default(), ServerConfig::default()).await;
    // A future client, whose hello has fields this service does not know.
    for hello in [
        br#"{"type":"hello","protocol":99,"client":"easel 9","caps":["x"]}"#.as_slice(),
        br#"{"type":"hello","protocol":0}"#.as_slice(),
        br#"{"type":"hello"}"#.as_slice(),
    ] {
        let mut conn = raw(&s.socket).await;
        conn.send(Bytes::copy_from_slice(hello)).await.unwrap();
        let frame = read_frame(&mut conn).await;
        let Some(ServerFrame::Refused { protocol, error }) = frame else {
            panic!("expected a refusal, got {frame:?}");
        };
        assert_eq!(protocol, PROTOCOL_VERSION);
        assert_eq!(error.kind, ErrorKind::VersionMismatch);
        assert!(
            error
                .message
                .contains(&format!("protocol version {PROTOCOL_VERSION}")),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("easel service stop"),
            "{}",
            error.message
        );
        assert_closed(&mut conn).await;
    }
    assert_eq!(s.handler.handled.load(Ordering::SeqCst), 0);
    s.assert_alive().await;
}

#[tokio::test]
async fn a_service_of_another_version_is_told_clearly_to_the_client() {
    // An old service that answers the frozen first frame with its own version.
    let (_root, socket) = paths();
    easel::service::prepare_socket_dir(&socket).unwrap();
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = Framed::new(stream, wire::codec(1 << 20));
        let _hello = conn.next().await;
        let old = br#"{"type":"welcome","protocol":0,"service":"easel 0.0.1","pid":1,"old":true}"#;
        conn.send(Bytes::from_static(old)).await.unwrap();
        let _ = conn.next().await;
    });
    let err = Client::connect(&socket, "test").await.unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::VersionMismatch {
                client: PROTOCOL_VERSION,
                service: 0
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("older") && msg.contains("easel service stop"),
        "{msg}"
    );
}

#[tokio::test]
async fn the_first_frame_must_be_a_hello() {
    let s = start(TestHandler::default(), ServerConfig::default()).await;
    let mut conn = raw(&s.socket).await;
    let req = ClientFrame::Request {
        id: 1,
        request: Request::Status,
    };
    conn.send(wire::encode(&req, 1 << 20).unwrap())
        .await
        .unwrap();
    let (kind, _) = fatal_kind(read_frame(&mut conn).await);
    assert_eq!(kind, ErrorKind::HandshakeRequired);
    assert_closed(&mut conn).await;
    assert_eq!(s.handler.handled.load(Ordering::SeqCst), 0);
    s.assert_alive().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let s = start(TestHandler::default(), ServerConfig::default()).await;
    let mut conn = raw(&s.socket).await;
    let started = tokio::time::Instant::now();
    let (kind, _) = fatal_kind(read_frame(&mut conn).await);
    assert_eq!(kind, ErrorKind::HandshakeTimeout);
    assert!(started.elapsed() >= ServerConfig::default().handshake_timeout);
    assert_closed(&mut conn).await;
}

// ---------------------------------------------------------------------------------------------
// Frames over the cap, garbage
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_frame_over_the_cap_gets_an_error_and_a_closed_connection() {
    let s = start(TestHandler::default(), ServerConfig::default()).await;
    // After the handshake: a request one byte over the cap.
    let conn = raw_hello(&s.socket).await;
    let big = vec![b' '; MAX_REQUEST_FRAME + 1];
    // Write it from another task: the service stops reading after the length prefix.
    let (mut rd, mut wr) = conn.into_inner().into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&((big.len() as u32).to_be_bytes())).await;
        let _ = wr.write_all(&big).await;
        wr
    });
    let mut got = Vec::new();
    tokio::time::timeout(GUARD, rd.read_to_end(&mut got))
        .await
        .unwrap()
        .ok();
    let _ = writer.await;
    let frame: ServerFrame = wire::decode(&got[4..]).unwrap();
    let (kind, message) = fatal_kind(Some(frame));
    assert_eq!(kind, ErrorKind::FrameTooLarge);
    assert!(
        message.contains(&MAX_REQUEST_FRAME.to_string()),
        "{message}"
    );
    assert_eq!(s.handler.handled.load(Ordering::SeqCst), 0);

    // As the very first frame: refused as soon as the length is read.
    let mut stream = UnixStream::connect(&s.socket).await.unwrap();
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let mut conn = Framed::new(stream, wire::codec(1 << 20));
    let (kind, _) = fatal_kind(read_frame(&mut conn).await);
    assert_eq!(kind, ErrorKind::FrameTooLarge);
    assert_closed(&mut conn).await;
    s.assert_alive().await;
}

#[tokio::test]
async fn garbage_gets_an_error_and_a_closed_connection_and_the_listener_stays_up() {
    let s = start(TestHandler::default(), ServerConfig::default()).await;

    // Bytes from the wrong program: "GET " read as a length is far over the cap.
    let mut stream = UnixStream::connect(&s.socket).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut conn = Framed::new(stream, wire::codec(1 << 20));
    let (kind, _) = fatal_kind(read_frame(&mut conn).await);
    assert_eq!(kind, ErrorKind::FrameTooLarge);
    assert_closed(&mut conn).await;

    // A well-framed first frame that is not JSON.
    let mut conn = raw(&s.socket).await;
    conn.send(Bytes::from_static(b"\x00\xff\xfe not json"))
        .await
        .unwrap();
    let (kind, _) = fatal_kind(read_frame(&mut conn).await);
    assert_eq!(kind, ErrorKind::Malformed);
    assert_closed(&mut conn).await;

    // After a good handshake: not JSON, JSON of the wrong shape, an unknown request, a second
    // hello.
    for bad in [
        b"\x1b[2J not json".as_slice(),
        br#"[1,2,3]"#.as_slice(),
        br#"{"type":"request","id":1,"request":{"op":"format_disk"}}"#.as_slice(),
        br#"{"type":"hello","protocol":1}"#.as_slice(),
    ] {
        let mut conn = raw_hello(&s.socket).await;
        conn.send(Bytes::copy_from_slice(bad)).await.unwrap();
        let (kind, message) = fatal_kind(read_frame(&mut conn).await);
        assert_eq!(
            kind,
            ErrorKind::Malformed,
            "{}",
            String::from_utf8_lossy(bad)
        );
        assert!(message.contains("closed"), "{message}");
        assert_closed(&mut conn).await;
    }

    // Random bytes, many times, each on its own connection.
    let mut rng = fastrand::Rng::with_seed(11);
    for _ in 0..50 {
        let len = rng.usize(1..200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let mut stream = UnixStream::connect(&s.socket).await.unwrap();
        let _ = stream.write_all(&bytes).await;
        // Close our side: a short frame then ends early instead of waiting for the rest.
        let _ = stream.shutdown().await;
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(GUARD, stream.read_to_end(&mut rest))
            .await
            .unwrap();
    }
    assert_eq!(s.handler.handled.load(Ordering::SeqCst), 0);
    s.assert_alive().await;
}

// ---------------------------------------------------------------------------------------------
// Stale sockets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
    let (_root, socket) = paths();
    easel::service::prepare_socket_dir(&socket).unwrap();
    // A service that died: its socket file stays, nothing listens.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let err = Client::connect(&socket, "t").await.unwrap_err();
    assert!(matches!(err, ServiceError::NotRunning { .. }), "{err:?}");
    assert!(err.to_string().contains("easel service run"), "{err}");

    let listener = Listener::bind(&socket).await.unwrap();
    let server = Server::new(
        listener,
        Arc::new(TestHandler::default()),
        ServerConfig::default(),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    let mut c = Client::connect(&socket, "t").await.unwrap();
    assert!(matches!(
        c.request(Request::Status).await.unwrap(),
        Reply::Status(_)
    ));

    // A live one is left alone.
    let err = Listener::bind(&socket).await.unwrap_err();
    assert!(
        matches!(err, ServiceError::AlreadyRunning { .. }),
        "{err:?}"
    );
    assert!(matches!(
        c.request(Request::Status).await.unwrap(),
        Reply::Status(_)
    ));

    // Stopping removes the socket.
    shutdown.cancel();
    task.await.unwrap();
    assert!(!socket.exists());
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_never_removed() {
    let (_root, socket) = paths();
    easel::service::prepare_socket_dir(&socket).unwrap();
    std::fs::write(&socket, b"precious").unwrap();
    let err = Listener::bind(&socket).await.unwrap_err();
    assert!(matches!(err, ServiceError::NotASocket { .. }), "{err:?}");
    assert_eq!(std::fs::read(&socket).unwrap(), b"precious");
}

#[tokio::test]
async fn stopping_tells_subscribers_and_removes_the_socket() {
    let (tx, _keep) = broadcast::channel(16);
    let s = start(
        TestHandler {
            events: Some(tx),
            ..TestHandler::default()
        },
        ServerConfig::default(),
    )
    .await;
    let mut c = Client::connect(&s.socket, "t").await.unwrap();
    assert_eq!(
        c.request(Request::Subscribe).await.unwrap(),
        Reply::Subscribed
    );
    s.shutdown.cancel();
    let event = tokio::time::timeout(GUARD, c.next_event())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, Event::Stopping);
    s.task.await.unwrap();
    assert!(!s.socket.exists());
}

// ---------------------------------------------------------------------------------------------
// Several clients
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_at_once_share_requests_and_events() {
    let (tx, _keep) = broadcast::channel(64);
    let s = start(
        TestHandler {
            events: Some(tx.clone()),
            ..TestHandler::default()
        },
        ServerConfig::default(),
    )
    .await;
    let mut a = Client::connect(&s.socket, "a").await.unwrap();
    let mut b = Client::connect(&s.socket, "b").await.unwrap();
    assert_eq!(s.clients.load(Ordering::SeqCst), 2);
    assert_eq!(
        a.request(Request::Subscribe).await.unwrap(),
        Reply::Subscribed
    );
    assert_eq!(
        b.request(Request::Subscribe).await.unwrap(),
        Reply::Subscribed
    );

    // Both at once, interleaved.
    let ra = async {
        for _ in 0..100 {
            let r = a.request(Request::Status).await.unwrap();
            assert!(matches!(r, Reply::Status(_)));
        }
        a
    };
    let rb = async {
        for _ in 0..100 {
            let id = Id::new();
            let r = b
                .request(Request::Star {
                    record: id,
                    starred: true,
                })
                .await
                .unwrap();
            assert_eq!(
                r,
                Reply::Deleted {
                    record: id,
                    old: None
                }
            );
        }
        b
    };
    let (mut a, mut b) = tokio::time::timeout(GUARD, async { tokio::join!(ra, rb) })
        .await
        .unwrap();
    assert_eq!(s.handler.handled.load(Ordering::SeqCst), 200);

    // Every event reaches both, in order.
    let ids: Vec<Id> = (0..5).map(|_| Id::new()).collect();
    for id in &ids {
        tx.send(Event::Deleted { record: *id }).unwrap();
    }
    for c in [&mut a, &mut b] {
        for id in &ids {
            let e = tokio::time::timeout(GUARD, c.next_event())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(e, Event::Deleted { record: *id });
        }
    }
    drop(a);
    // The count drops when a client leaves (its task ends on the closed socket).
    tokio::time::timeout(GUARD, async {
        while s.clients.load(Ordering::SeqCst) != 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert!(matches!(
        b.request(Request::Status).await.unwrap(),
        Reply::Status(_)
    ));
}

#[tokio::test]
async fn a_slow_subscriber_is_told_it_lagged() {
    let (tx, _keep) = broadcast::channel(4);
    let s = start(
        TestHandler {
            events: Some(tx.clone()),
            ..TestHandler::default()
        },
        ServerConfig::default(),
    )
    .await;
    let mut c = Client::connect(&s.socket, "t").await.unwrap();
    c.request(Request::Subscribe).await.unwrap();
    // Ten events into a channel of four before the connection's task can forward any.
    for _ in 0..10 {
        tx.send(Event::Paused { paused: true }).unwrap();
    }
    let e = tokio::time::timeout(GUARD, c.next_event())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e, Event::Lagged { missed: 6 });
}

// ---------------------------------------------------------------------------------------------
// Clients that die
// ---------------------------------------------------------------------------------------------

/// Runs this test binary again as `test` with `EASEL_TEST_CHILD=role`.
fn child(test: &str, role: &str, socket: &Path) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("EASEL_TEST_CHILD", role)
        .env("EASEL_TEST_SOCKET", socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn child_role() -> Option<(String, PathBuf)> {
    let role = std::env::var("EASEL_TEST_CHILD").ok()?;
    let socket = PathBuf::from(std::env::var_os("EASEL_TEST_SOCKET")?);
    Some((role, socket))
}

#[tokio::test]
async fn the_listener_survives_a_client_killed_mid_request() {
    if let Some((role, socket)) = child_role() {
        assert_eq!(role, "hang");
        let mut c = Client::connect(&socket, "doomed").await.unwrap();
        // Blocks in the handler until the parent kills this process.
        let _ = c.request(Request::Cancel { job: Id::new() }).await;
        std::process::exit(3);
    }
    let s = start(TestHandler::default(), ServerConfig::default()).await;
    let mut proc = child(
        "the_listener_survives_a_client_killed_mid_request",
        "hang",
        &s.socket,
    )
    .spawn()
    .unwrap();
    tokio::time::timeout(GUARD, s.handler.entered.notified())
        .await
        .expect("the child's request reached the handler");
    proc.kill().unwrap(); // SIGKILL
    let status = proc.wait().unwrap();
    assert!(!status.success());
    // The handler's work completes even though its client is gone, and nothing else breaks.
    s.handler.release.notify_one();
    tokio::time::timeout(GUARD, async {
        while s.handler.finished.load(Ordering::SeqCst) != 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    s.assert_alive().await;

    // And a client that dies in the middle of writing a frame.
    let mut stream = UnixStream::connect(&s.socket).await.unwrap();
    let hello = wire::encode(
        &ClientFrame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            client: "half".into(),
        }),
        1 << 20,
    )
    .unwrap();
    stream
        .write_all(&(hello.len() as u32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&hello[..hello.len() / 2]).await.unwrap();
    drop(stream);
    s.assert_alive().await;
}

// ---------------------------------------------------------------------------------------------
// Peers of another uid
// ---------------------------------------------------------------------------------------------

/// Outcome lines a foreign-uid child prints.
const CONNECT: &str = "CONNECT:";
const FIRST: &str = "FIRST:";
const CLIENT: &str = "CLIENT:";

#[tokio::test]
async fn a_peer_of_another_uid_is_refused() {
    if let Some((role, socket)) = child_role() {
        assert_eq!(role, "foreign");
        match UnixStream::connect(&socket).await {
            Err(e) => println!("{CONNECT}{:?}", e.kind()),
            Ok(stream) => {
                println!("{CONNECT}ok");
                let mut conn = Framed::new(stream, wire::codec(1 << 20));
                let hello = ClientFrame::Hello(Hello {
                    protocol: PROTOCOL_VERSION,
                    client: "intruder".into(),
                });
                // The service may refuse before reading the hello: the write can fail with a
                // broken pipe, and the refusal is still there to read.
                let _ = conn.send(wire::encode(&hello, 1 << 20).unwrap()).await;
                match conn.next().await {
                    Some(Ok(bytes)) => println!("{FIRST}{}", String::from_utf8_lossy(&bytes)),
                    other => println!("{FIRST}none {other:?}"),
                }
            }
        }
        // The real client refuses a service of another uid before saying anything.
        match Client::connect(&socket, "intruder").await {
            Ok(_) => println!("{CLIENT}connected"),
            Err(e) => println!("{CLIENT}{e}"),
        }
        std::process::exit(0);
    }

    let me = easel::service::my_uid();
    if me != 0 {
        println!(
            "note: skipped — running as uid {me}; running a client as another user needs root (setpriv)"
        );
        return;
    }
    let Some(setpriv) = which("setpriv") else {
        println!("note: skipped — setpriv is not installed");
        return;
    };
    let s = start(TestHandler::default(), ServerConfig::default()).await;
    let exe = std::env::current_exe().unwrap();
    // The other user must be able to run this test binary.
    let exe_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(exe_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe_copy = exe_dir.path().join("service_protocol");
    std::fs::copy(&exe, &exe_copy).unwrap();
    std::fs::set_permissions(&exe_copy, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Run from a blocking thread: the service answers on this test's runtime meanwhile.
    let run_as_nobody = || {
        let mut cmd = Command::new(&setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe_copy)
            .args([
                "a_peer_of_another_uid_is_refused",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("EASEL_TEST_CHILD", "foreign")
            .env("EASEL_TEST_SOCKET", &s.socket)
            .stdin(Stdio::null());
        async move {
            let out =
                tokio::time::timeout(GUARD, tokio::task::spawn_blocking(move || cmd.output()))
                    .await
                    .expect("the child finished")
                    .unwrap()
                    .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                stdout.contains(CONNECT),
                "the child did not run: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }
    };
    let line = |out: &str, prefix: &str| {
        out.lines()
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.to_string()))
            .unwrap_or_default()
    };

    // First wall: the folder (0700) and socket (0600) keep the other user out.
    // (The temp root must be passable for the socket to be reached at all.)
    std::fs::set_permissions(s._root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = s.socket.parent().unwrap().parent().unwrap();
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_as_nobody().await;
    assert_eq!(line(&out, CONNECT), "PermissionDenied", "{out}");

    // Second wall: with the permissions opened on purpose, the uid check still refuses.
    let dir = s.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&s.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run_as_nobody().await;
    assert_eq!(line(&out, CONNECT), "ok", "{out}");
    let first = line(&out, FIRST);
    let frame: ServerFrame = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {out}"));
    let (kind, message) = fatal_kind(Some(frame));
    assert_eq!(kind, ErrorKind::PermissionDenied);
    assert!(message.contains("uid 65534 are refused"), "{message}");
    let client = line(&out, CLIENT);
    assert!(
        client.contains("runs as uid 0") && client.contains("not your easel service"),
        "{out}"
    );
    assert_eq!(s.handler.handled.load(Ordering::SeqCst), 0);
    assert_eq!(s.clients.load(Ordering::SeqCst), 0);
    s.assert_alive().await;
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------------
// A figure
// ---------------------------------------------------------------------------------------------

/// The transport's own cost per request (a status round trip on one connection), printed for
/// docs/benchmarks; the bound is loose so a busy machine does not fail it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_costs_well_under_a_frame() {
    let s = start(TestHandler::default(), ServerConfig::default()).await;
    let mut c = Client::connect(&s.socket, "bench").await.unwrap();
    for _ in 0..100 {
        c.request(Request::Status).await.unwrap();
    }
    let mut times = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t = std::time::Instant::now();
        c.request(Request::Status).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let p95 = times[times.len() * 95 / 100];
    let p99 = times[times.len() * 99 / 100];
    println!(
        "status round trip over the socket: p50 {p50:?}, p95 {p95:?}, p99 {p99:?} (2000 requests)"
    );
    assert!(p95 < Duration::from_millis(16), "p95 {p95:?}");
}

/// A reply too large for a frame is a failure that says so, and the connection goes on (it used
/// to close the connection, which a client saw as a dead service).
#[tokio::test]
async fn a_reply_over_the_frame_cap_fails_without_closing_the_connection() {
    let config = ServerConfig {
        max_service_frame: 180,
        ..ServerConfig::default()
    };
    let s = start(TestHandler::default(), config).await;
    let mut c = Client::connect(&s.socket, "test").await.unwrap();
    // A status reply is over 180 bytes.
    let err = c.request(Request::Status).await.unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Failed {
                kind: ErrorKind::FrameTooLarge,
                ..
            }
        ),
        "{err:?}"
    );
    // The same connection still answers a small request.
    let small = c.request(Request::Cancel {
        job: easel::store::Id::new(),
    });
    // (The test handler's cancel waits for a release.)
    let release = async {
        s.handler.entered.notified().await;
        s.handler.release.notify_one();
    };
    let (r, ()) = tokio::join!(small, release);
    assert!(matches!(r.unwrap(), Reply::Cancelled { .. }));
}

/// An old service (protocol 1, left running across an upgrade) that answers status with
/// `running` jobs and obeys stop. Returns whether it was told to stop.
async fn old_service(socket: PathBuf, running: u64) -> bool {
    easel::service::prepare_socket_dir(&socket).unwrap();
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let mut conn = Framed::new(stream, wire::codec(1 << 20));
    let mut stopped = false;
    while let Some(Ok(frame)) = conn.next().await {
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        let answer = match (v["type"].as_str(), v["request"]["op"].as_str()) {
            (Some("hello"), _) => {
                assert_eq!(v["protocol"], 1, "spoken to in its own version");
                serde_json::json!({"type":"welcome","protocol":1,"service":"easel 0.0.9","pid":1})
            }
            (_, Some("status")) => serde_json::json!({"type":"reply","id":v["id"],
                "reply":{"kind":"status","pid":1,"protocol":1,"socket":"","uptime_secs":9,
                         "clients":1,"jobs_running":running,"jobs_queued":0}}),
            (_, Some("stop")) => {
                stopped = true;
                serde_json::json!({"type":"reply","id":v["id"],"reply":{"kind":"stopping"}})
            }
            _ => panic!("unexpected {v}"),
        };
        conn.send(Bytes::from(serde_json::to_vec(&answer).unwrap()))
            .await
            .unwrap();
        if stopped {
            std::fs::remove_file(&socket).unwrap();
            break;
        }
    }
    stopped
}

#[tokio::test]
async fn an_idle_older_service_is_replaced_and_a_busy_one_is_left_alone() {
    // Idle: asked to stop, and the socket is free for a new service.
    let (_root, socket) = paths();
    let old = tokio::spawn(old_service(socket.clone(), 0));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let replaced = easel::service::start::replace_idle_old_service(&socket, 1, "test").await;
    assert!(replaced);
    assert!(old.await.unwrap(), "the old service was told to stop");
    assert!(!socket.exists());

    // Busy: its jobs are left to finish; nothing is stopped.
    let (_root2, socket) = paths();
    let old = tokio::spawn(old_service(socket.clone(), 2));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let replaced = easel::service::start::replace_idle_old_service(&socket, 1, "test").await;
    assert!(!replaced);
    assert!(
        !old.await.unwrap(),
        "a busy old service must not be stopped"
    );
}
