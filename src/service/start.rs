//! Starting the service on demand, like tmux's server: a client that finds nothing listening
//! starts `easel service run` detached (its own session, stdio to a log), waits for the socket
//! (bounded), and connects. Two clients starting at once end with one service: the data
//! folder's lock decides, and the loser's client connects to the winner.

use super::{Client, ServiceError};
use crate::config::Settings;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a client waits for a service it started to listen.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The service's log: `$XDG_STATE_HOME/easel/service-<socket name>.log` (or
/// `~/.local/state/...`), falling back to the data folder.
pub fn log_path(data_dir: &Path, socket: &Path) -> PathBuf {
    let name = socket
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "service".into());
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local").join("state"))
        });
    match state {
        Some(s) => s.join("easel").join(format!("service-{name}.log")),
        None => data_dir.join(format!("service-{name}.log")),
    }
}

/// Why the service with `pid` did not start, from its log: its own last line, without the
/// timestamp and prefix (the log holds earlier services' lines too).
fn start_failure(log: &Path, pid: u32) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tag = format!("easel service[{pid}]: ");
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.split_once(&tag).map(|(_, rest)| rest))
        .map(|rest| rest.strip_prefix("could not start: ").unwrap_or(rest));
    match line {
        Some(why) => crate::sanitize::line(why).into_owned(),
        None => "it stopped without saying why; `easel service run --foreground` shows it".into(),
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ServiceError {
    move |source| ServiceError::Io { what, source }
}

/// The socket of `settings`' data folder (the folder made first, private, if it is new).
pub fn socket_for(settings: &Settings) -> Result<PathBuf, ServiceError> {
    let data_dir = &settings.paths.data_dir;
    if !data_dir.exists() {
        crate::store::files::create_private_dir(data_dir).map_err(|source| {
            ServiceError::DataFolder {
                path: data_dir.clone(),
                source,
            }
        })?;
    }
    super::socket_path(data_dir)
}

/// Start the service for `settings`' data folder in the background: a new session (no
/// terminal, so no hangup when this one goes), stdin from /dev/null, output to the log. The
/// API keys of this environment are not passed on: jobs bring their own.
pub fn spawn(settings: &Settings, socket: &Path) -> Result<std::process::Child, ServiceError> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().map_err(io("finding the easel program"))?;
    let log = log_path(&settings.paths.data_dir, socket);
    if let Some(dir) = log.parent() {
        crate::store::files::create_private_dir(dir).map_err(io("creating the log folder"))?;
    }
    let out = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)
            .map_err(io("opening the service log"))?
    };
    let err = out.try_clone().map_err(io("opening the service log"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["service", "run", "--foreground", "--detached"])
        .env("EASEL_CONFIG", &settings.paths.config_file)
        .env("EASEL_DATA_DIR", &settings.paths.data_dir)
        .env_remove("EASEL_SERVICE")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    for var in settings.key_variables() {
        cmd.env_remove(var);
    }
    cmd.spawn().map_err(io("starting the easel service"))
}

/// Ask an older service (protocol `version`, after an upgrade) whether it is idle and, if so,
/// to stop, speaking its version's frozen first frame and reading its answers loosely (a
/// `status` and a `stop` request have this shape in every version that has them). True when it
/// stopped and let the socket go; false when it is busy (its jobs are left to finish) or did
/// not understand.
pub async fn replace_idle_old_service(socket: &Path, version: u32, name: &str) -> bool {
    use futures_util::{SinkExt, StreamExt};
    let Ok(stream) = tokio::net::UnixStream::connect(socket).await else {
        return false;
    };
    // Only our own service is asked anything.
    if !stream.peer_cred().is_ok_and(|c| c.uid() == super::my_uid()) {
        return false;
    }
    let mut conn = tokio_util::codec::Framed::new(stream, super::wire::codec(1 << 24));
    let mut ask = async |frame: serde_json::Value| -> Option<serde_json::Value> {
        let bytes = serde_json::to_vec(&frame).ok()?;
        conn.send(bytes::Bytes::from(bytes)).await.ok()?;
        // Skip events; the first reply or welcome is the answer.
        for _ in 0..64 {
            let got = tokio::time::timeout(Duration::from_secs(3), conn.next())
                .await
                .ok()??
                .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&got).ok()?;
            match v["type"].as_str() {
                Some("event") => continue,
                _ => return Some(v),
            }
        }
        None
    };
    let hello = serde_json::json!({"type": "hello", "protocol": version, "client": name});
    match ask(hello).await {
        Some(v) if v["type"] == "welcome" => {}
        _ => return false,
    }
    let status = serde_json::json!({"type": "request", "id": 1, "request": {"op": "status"}});
    let Some(reply) = ask(status).await else {
        return false;
    };
    let running = reply["reply"]["jobs_running"].as_u64();
    let queued = reply["reply"]["jobs_queued"].as_u64().unwrap_or(0);
    if running != Some(0) {
        return false;
    }
    let stop = serde_json::json!({"type": "request", "id": 2, "request": {"op": "stop"}});
    match ask(stop).await {
        Some(v) if v["reply"]["kind"] == "stopping" => {}
        _ => return false,
    }
    drop(conn);
    let until = Instant::now() + Duration::from_secs(10);
    while socket.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if queued > 0 {
        // Its queued jobs stay stored: the new service picks them up.
        eprintln!("easel: replaced the idle older service; its {queued} queued job(s) carry on");
    }
    !socket.exists()
}

/// Connect to the data folder's service, starting it if nothing answers. An idle service of an
/// older protocol (left running across an upgrade) is stopped and replaced.
pub async fn connect_or_start(settings: &Settings, name: &str) -> Result<Client, ServiceError> {
    let socket = socket_for(settings)?;
    match Client::connect(&socket, name).await {
        // Nothing listens, or a service on its way out closed on us.
        Err(ServiceError::NotRunning { .. } | ServiceError::Closed) => {}
        Err(ServiceError::VersionMismatch { client, service }) if service < client => {
            if !replace_idle_old_service(&socket, service, name).await {
                return Err(ServiceError::VersionMismatch { client, service });
            }
        }
        other => return other,
    }
    let mut child = spawn(settings, &socket)?;
    let log = log_path(&settings.paths.data_dir, &socket);
    let deadline = Instant::now() + START_TIMEOUT;
    // When the service started last found the data folder taken (exit 3).
    let mut lost_at: Option<Instant> = None;
    loop {
        match Client::connect(&socket, name).await {
            Ok(c) => {
                reap(child);
                return Ok(c);
            }
            // Nothing listens yet; or a service on its way out (killed: its socket takes
            // connections until its last thread is gone) closed on us.
            Err(ServiceError::NotRunning { .. } | ServiceError::Closed) => {}
            Err(e) => return Err(e),
        }
        if lost_at.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            if status.code() != Some(3) {
                return Err(ServiceError::StartFailed {
                    log: log.clone(),
                    detail: start_failure(&log, child.id()),
                });
            }
            lost_at = Some(Instant::now());
        }
        // Exit 3: another service holds the data folder — one that won the race, which
        // listens soon, or one on its way out (killed, its lock not yet let go), which never
        // will: when none listens a moment later, start one again.
        if lost_at.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) {
            child = spawn(settings, &socket)?;
            lost_at = None;
        }
        if Instant::now() > deadline {
            reap(child);
            return Err(ServiceError::StartFailed {
                log: log.clone(),
                detail: format!(
                    "it did not start listening within {} s; `easel service run --foreground` shows why, or EASEL_SERVICE=off runs without it",
                    START_TIMEOUT.as_secs()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait for the service this client started, on a thread of its own, so that when it exits
/// it does not stay a zombie for as long as this client lives (a studio): `easel service
/// stop` waits for the process to be gone, and a zombie never is.
fn reap(mut child: std::process::Child) {
    let _ = std::thread::Builder::new()
        .name("easel-service-reaper".into())
        .spawn(move || child.wait());
}

/// Connect to the data folder's service if one runs (never starts one).
pub async fn connect_running(settings: &Settings, name: &str) -> Result<Client, ServiceError> {
    let socket = socket_for(settings)?;
    Client::connect(&socket, name).await
}
