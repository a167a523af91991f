//! `easel service run|status|stop`: the background process that owns a data folder's queue and
//! history (normally started for you by the first command that needs it).

use crate::config::Settings;
use crate::service::host::{self, StartError};
use crate::service::protocol::{Reply, Request};
use crate::service::{ServiceError, start};
use clap::Subcommand;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Start the data folder's service in the background (commands start it when they need it).
    #[command(after_help = "\
The service owns the data folder: the studio and every command are its clients, so jobs keep
running when a terminal or an SSH link goes away, and several studios share one live queue.
It stops by itself after [service] idle_exit_secs with no client and no job.")]
    Run {
        /// Stay in the foreground, logging to stderr (for debugging).
        #[arg(long)]
        foreground: bool,
        /// Internal: started by a client; leave the terminal's session first.
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Whether a service runs for this data folder: pid, socket, uptime, clients, jobs.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Stop the service. Asks first while jobs run (they would be recorded as interrupted).
    Stop {
        /// Stop even while jobs run.
        #[arg(long)]
        force: bool,
    },
}

fn who() -> String {
    format!("easel {} service-cmd", env!("CARGO_PKG_VERSION"))
}

pub async fn run(settings: &Settings, action: ServiceAction) -> i32 {
    match action {
        ServiceAction::Run {
            foreground: true,
            detached,
        } => foreground(settings, detached).await,
        ServiceAction::Run {
            foreground: false, ..
        } => match start::connect_or_start(settings, &who()).await {
            Ok(c) => {
                let log = start::log_path(&settings.paths.data_dir, c.path());
                println!(
                    "easel service running (pid {}) on {}; log: {}",
                    c.welcome().pid,
                    crate::sanitize::line(&c.path().display().to_string()),
                    crate::sanitize::line(&log.display().to_string())
                );
                0
            }
            Err(e) => fail(&e),
        },
        ServiceAction::Status { json } => status(settings, json).await,
        ServiceAction::Stop { force } => stop(settings, force).await,
    }
}

fn fail(e: &ServiceError) -> i32 {
    super::report(&e.to_string(), None);
    1
}

async fn foreground(settings: &Settings, detached: bool) -> i32 {
    if detached {
        // Its own session: no controlling terminal, so a hangup of the terminal that started
        // it (an SSH link dropping) never reaches it. Fails only for a group leader, which a
        // freshly spawned child is not.
        let _ = rustix::process::setsid();
    }
    match host::run(settings).await {
        Ok(()) => 0,
        Err(StartError::Locked(m)) => {
            host::log(&format!("not started: {m}"));
            3
        }
        Err(StartError::Other(m)) => {
            host::log(&format!("could not start: {m}"));
            if !detached {
                super::report(&m, None);
            }
            1
        }
    }
}

async fn status(settings: &Settings, json: bool) -> i32 {
    let socket = match start::socket_for(settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let mut client = match start::connect_running(settings, &who()).await {
        Ok(c) => c,
        Err(ServiceError::NotRunning { .. }) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"running": false, "socket": socket.display().to_string()})
                );
            } else {
                println!(
                    "no easel service runs for {} (socket {}); the next command starts one",
                    crate::sanitize::line(&settings.paths.data_dir.display().to_string()),
                    crate::sanitize::line(&socket.display().to_string())
                );
            }
            return 3;
        }
        Err(e) => return fail(&e),
    };
    match client.request(Request::Status).await {
        Ok(Reply::Status(s)) => {
            if json {
                let mut v = serde_json::to_value(&s).unwrap_or_default();
                v["running"] = serde_json::Value::Bool(true);
                v["log"] = serde_json::Value::String(
                    start::log_path(&settings.paths.data_dir, &socket)
                        .display()
                        .to_string(),
                );
                println!("{v}");
            } else {
                let clean = |t: &str| crate::sanitize::line(t).into_owned();
                println!(
                    "easel service {} (protocol {})",
                    clean(&s.version),
                    s.protocol
                );
                println!("  pid      {}", s.pid);
                println!("  data     {}", clean(&s.data_dir));
                println!("  socket   {}", clean(&s.socket));
                println!(
                    "  log      {}",
                    clean(
                        &start::log_path(&settings.paths.data_dir, &socket)
                            .display()
                            .to_string()
                    )
                );
                println!("  uptime   {}", uptime(s.uptime_secs));
                // This command is one of the clients.
                println!("  clients  {}", s.clients.saturating_sub(1));
                let waiting = if s.jobs_waiting > 0 {
                    format!(" ({} waiting for a key)", s.jobs_waiting)
                } else {
                    String::new()
                };
                println!(
                    "  jobs     {} running, {} queued{waiting}",
                    s.jobs_running, s.jobs_queued
                );
                println!("  batches  {}", super::batch::summary(&s.batches));
            }
            0
        }
        Ok(other) => {
            super::report(&format!("unexpected answer: {other:?}"), None);
            1
        }
        Err(e) => fail(&e),
    }
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// What stopping found.
pub enum Stopped {
    /// No service was running.
    NotRunning,
    /// It stopped (its pid).
    Stopped(u32),
    /// Jobs run and `force` was not given.
    Busy { running: u32, queued: u32 },
}

/// Ask the data folder's service to stop and wait (bounded) until it has let the folder go.
pub async fn stop_service(settings: &Settings, force: bool) -> Result<Stopped, ServiceError> {
    let mut client = match start::connect_running(settings, &who()).await {
        Ok(c) => c,
        Err(ServiceError::NotRunning { .. }) => return Ok(Stopped::NotRunning),
        Err(e) => return Err(e),
    };
    let pid = client.welcome().pid;
    let socket = client.path().to_path_buf();
    match client.request(Request::Stop { force }).await? {
        Reply::Busy { running, queued } => return Ok(Stopped::Busy { running, queued }),
        Reply::Stopping => {}
        other => {
            return Err(ServiceError::Garbled {
                detail: format!("{other:?}"),
            });
        }
    }
    drop(client);
    // Gone when its socket is: it removes it after recording running jobs as interrupted and
    // closing the store.
    let until = Instant::now() + Duration::from_secs(20);
    while socket.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The lock goes with the process.
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    while proc.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Stopped::Stopped(pid))
}

async fn stop(settings: &Settings, force: bool) -> i32 {
    let mut force = force;
    loop {
        match stop_service(settings, force).await {
            Ok(Stopped::NotRunning) => {
                println!("no easel service was running");
                return 0;
            }
            Ok(Stopped::Stopped(pid)) => {
                println!("stopped the easel service (pid {pid})");
                return 0;
            }
            Ok(Stopped::Busy { running, queued }) => {
                let what = format!(
                    "{running} job(s) running and {queued} queued; stopping records the running ones as interrupted (retryable, and paid for if already sent)"
                );
                if !force && std::io::stdin().is_terminal() {
                    eprint!("easel: {what}. Stop anyway? [y/N] ");
                    let mut answer = String::new();
                    let _ = std::io::stdin().read_line(&mut answer);
                    if matches!(answer.trim(), "y" | "Y" | "yes") {
                        force = true;
                        continue;
                    }
                    eprintln!("easel: the service keeps running");
                    return 1;
                }
                super::report(
                    &format!("not stopped: {what}"),
                    Some("wait for them (`easel service status`), or add --force"),
                );
                return 1;
            }
            Err(e) => return fail(&e),
        }
    }
}
