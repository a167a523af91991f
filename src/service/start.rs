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

/// The last lines of the log, cleaned, for a message about a service that did not start.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines
        .into_iter()
        .rev()
        .map(|l| crate::sanitize::line(l).into_owned())
        .collect::<Vec<_>>()
        .join(" | ")
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

/// Connect to the data folder's service, starting it if nothing answers.
pub async fn connect_or_start(settings: &Settings, name: &str) -> Result<Client, ServiceError> {
    let socket = socket_for(settings)?;
    match Client::connect(&socket, name).await {
        Err(ServiceError::NotRunning { .. }) => {}
        other => return other,
    }
    let mut child = spawn(settings, &socket)?;
    let log = log_path(&settings.paths.data_dir, &socket);
    let mut deadline = Instant::now() + START_TIMEOUT;
    let mut exited = None;
    loop {
        match Client::connect(&socket, name).await {
            Ok(c) => {
                // Reaped later by nobody: the service is in its own session and outlives us;
                // dropping the handle does not stop it.
                drop(child);
                return Ok(c);
            }
            Err(ServiceError::NotRunning { .. }) => {}
            Err(e) => return Err(e),
        }
        if exited.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            // Exit 3: another service won the race for the data folder; it will listen soon.
            exited = Some(status);
            deadline = deadline.min(Instant::now() + Duration::from_secs(3));
            if status.code() != Some(3) {
                return Err(ServiceError::StartFailed {
                    log: log.clone(),
                    detail: log_tail(&log),
                });
            }
        }
        if Instant::now() > deadline {
            return Err(ServiceError::StartFailed {
                log: log.clone(),
                detail: format!("it did not start listening. {}", log_tail(&log)),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connect to the data folder's service if one runs (never starts one).
pub async fn connect_running(settings: &Settings, name: &str) -> Result<Client, ServiceError> {
    let socket = socket_for(settings)?;
    Client::connect(&socket, name).await
}
