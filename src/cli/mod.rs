//! The command line: argument parsing and the headless commands.

pub mod batch;
pub mod config_cmd;
pub mod generate;
pub mod history;
pub mod inputs;
pub mod lineage;
pub mod models;
pub mod picture;
pub mod service_cmd;
pub mod sheet;

use crate::config::{self, Paths, Settings};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Examples and the exit-status table, shown by `easel --help`.
pub const LONG_HELP_FOOTER: &str = "\
Examples:
  easel                                      open the studio
  easel generate \"a lighthouse at dusk\"      generate; prints the saved path
  easel generate -q high -s 1536x1024 -n 2 --out shots \"a fox in snow\"
  echo \"a quiet harbour\" | easel generate --json -
  easel generate --dry-run -q high \"a cat\"   the request and its estimated cost, unsent
  easel --quiet generate \"a cat\"             only the paths (and errors)
  easel models                               what each model takes and costs
  easel history list | head                  the latest generations
  easel view picture.png                     print a picture into the terminal
  easel completions bash > ~/.local/share/bash-completion/completions/easel
  easel man > easel.1                        (easel man --dir DIR: a page per command)

Exit status:
  0   done (generate: every image saved where asked)
  1   failed: nothing saved, the request refused before sending, or a config error
  2   generate: some images saved, or saved in the data folder because --out failed
  64  the command line could not be understood

Without an API key (OPENAI_API_KEY), everything runs on the offline demo backend.";

/// easel — a terminal studio for AI image generation.
///
/// Without a command, opens the studio. Without an API key, everything runs on the offline demo
/// backend.
#[derive(Debug, Parser)]
#[command(
    name = "easel",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "See `easel --help` for examples and the exit status table.",
    after_long_help = LONG_HELP_FOOTER
)]
pub struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/easel/config.toml).
    #[arg(long, global = true, value_name = "PATH", env = "EASEL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Provider profile to use: openai, demo, or a [providers.NAME] from the config.
    #[arg(long, global = true, value_name = "NAME", env = "EASEL_PROVIDER")]
    pub provider: Option<String>,

    /// Print only results and errors: no notices, warnings, progress or cost line.
    #[arg(long, global = true)]
    pub quiet: bool,

    /// Open the studio clean: not with the prompt, parameters, filters and selection it had
    /// when it was last closed.
    #[arg(long)]
    pub fresh: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate images from a prompt and save them (prints the saved paths).
    Generate(generate::GenerateArgs),
    /// Show where the config and data live, or write a commented config file.
    Config {
        #[command(subcommand)]
        action: config_cmd::ConfigAction,
    },
    /// Browse, search and manage everything generated so far.
    History {
        #[command(subcommand)]
        action: history::HistoryAction,
    },
    /// Print a picture file into the terminal (kitty, sixel or iTerm2 graphics where the terminal has them, else half-blocks or quadrants).
    View {
        file: PathBuf,
        /// Width in cells (default: the terminal's, at most 100).
        #[arg(long)]
        cols: Option<u32>,
        /// Height in cells (default: the terminal's less two lines).
        #[arg(long)]
        rows: Option<u32>,
    },
    /// Batch API batches sent with `easel generate --batch`: list, status, cancel.
    Batch {
        #[command(subcommand)]
        action: batch::BatchAction,
    },
    /// The background service that owns the data folder's queue and history.
    Service {
        #[command(subcommand)]
        action: service_cmd::ServiceAction,
    },
    /// List the models easel knows and what each accepts.
    Models {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) on stdout.
    #[command(after_help = "\
Examples:
  easel completions bash > ~/.local/share/bash-completion/completions/easel
  easel completions zsh > \"${fpath[1]}/_easel\"
  easel completions fish > ~/.config/fish/completions/easel.fish")]
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff) on stdout, or write one page per command into a folder.
    Man {
        /// Write easel.1, easel-generate.1, … into this folder instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The command line's definition, for completions and the manual page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Load paths and settings, or explain why not.
pub fn load_settings(cli: &Cli) -> Result<Settings, String> {
    let paths =
        Paths::resolve(cli.config.as_deref(), &config::real_env).map_err(|e| e.to_string())?;
    Settings::load(paths).map_err(|e| e.to_string())
}

pub use crate::setup::report;

/// Load the settings for a command, printing why not (or any warnings). The only warning is
/// about an API key others can read: it is printed even with --quiet.
fn settings_or_report(cli: &Cli) -> Option<Settings> {
    match load_settings(cli) {
        Ok(settings) => {
            for w in &settings.warnings {
                eprintln!("easel: warning: {}", crate::sanitize::line(w));
            }
            crate::picture::set_symbols(settings.file.ui.symbols);
            Some(settings)
        }
        Err(e) => {
            report(&e, Some(BROKEN_CONFIG_HINT));
            None
        }
    }
}

/// Never `config init --force`: that replaces the whole file, and everything else in it.
const BROKEN_CONFIG_HINT: &str = "fix the line it names in that file; to start over, move the file aside and run `easel config init`";

/// Run the command line; returns the process exit code.
pub async fn run(mut cli: Cli) -> i32 {
    match cli.command.take() {
        // `config` needs only the paths, so it works when the file itself is broken: `config
        // path` is how one finds the file.
        Some(Command::Config { action }) => {
            match Paths::resolve(cli.config.as_deref(), &config::real_env) {
                Ok(paths) => config_cmd::run(&paths, action),
                Err(e) => {
                    report(&e.to_string(), None);
                    1
                }
            }
        }
        Some(Command::Generate(mut args)) => {
            // A relative --out is relative to where easel was started. Saved paths outside the
            // data folder are kept (and printed) as they are, so make it absolute now: left
            // relative, the printed path would point inside the data folder.
            if let Some(out) = args.out.take() {
                match std::path::absolute(&out) {
                    Ok(abs) => args.out = Some(abs),
                    Err(e) => {
                        report(&format!("cannot use --out {}: {e}", out.display()), None);
                        return 1;
                    }
                }
            }
            match settings_or_report(&cli) {
                Some(settings) => {
                    generate::run(&settings, cli.provider.as_deref(), args, cli.quiet).await
                }
                None => 1,
            }
        }
        Some(Command::View { file, cols, rows }) => {
            // The config only chooses the symbols here: a broken one is not worth failing over.
            if let Ok(settings) = load_settings(&cli) {
                crate::picture::set_symbols(settings.file.ui.symbols);
            }
            let (tc, tr) = crossterm::terminal::size()
                .map(|(c, r)| (u32::from(c), u32::from(r)))
                .unwrap_or((80, 24));
            match picture::print_file(
                &file,
                cols.unwrap_or(tc.min(100)),
                rows.unwrap_or(tr.saturating_sub(2).max(1)),
            ) {
                Ok(()) => 0,
                Err(e) => {
                    report(&e, None);
                    1
                }
            }
        }
        Some(Command::Batch { action }) => match settings_or_report(&cli) {
            Some(settings) => batch::run(&settings, cli.provider.as_deref(), action).await,
            None => 1,
        },
        Some(Command::Service { action }) => match settings_or_report(&cli) {
            Some(settings) => service_cmd::run(&settings, action).await,
            None => 1,
        },
        Some(Command::Models { json }) => match settings_or_report(&cli) {
            Some(settings) => models::run(&settings, json),
            None => 1,
        },
        Some(Command::Completions { shell }) => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut command(), "easel", &mut out);
            0
        }
        Some(Command::Man { dir }) => {
            let written = match &dir {
                Some(dir) => clap_mangen::generate_to(command(), dir).map_err(|e| {
                    crate::store::files::describe_io_error("write the manual pages into", dir, &e)
                }),
                None => clap_mangen::Man::new(command())
                    .render(&mut std::io::stdout().lock())
                    .map_err(|e| format!("could not write the manual page: {e}")),
            };
            match written {
                Ok(()) => 0,
                Err(e) => {
                    report(&e, None);
                    1
                }
            }
        }
        Some(Command::History { action }) => match settings_or_report(&cli) {
            Some(settings) => {
                // The doctor needs the data folder to itself: an idle service is stopped first
                // (the next command starts it again).
                if matches!(action, history::HistoryAction::Doctor { .. })
                    && settings.file.service.effective_mode() == config::ServiceMode::Service
                {
                    match service_cmd::stop_service(&settings, false).await {
                        Ok(service_cmd::Stopped::Busy { running, queued }) => {
                            report(
                                &format!(
                                    "the doctor needs the data folder to itself, and the service is running {running} job(s) ({queued} queued)"
                                ),
                                Some(
                                    "wait for them (`easel service status`), or stop it with `easel service stop --force`",
                                ),
                            );
                            return 1;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            report(&e.to_string(), None);
                            return 1;
                        }
                    }
                    return history::run_in_process(&settings, action);
                }
                history::run(&settings, action)
            }
            None => 1,
        },
        None => match settings_or_report(&cli) {
            Some(settings) => {
                if !std::io::IsTerminal::is_terminal(&std::io::stdout())
                    || !std::io::IsTerminal::is_terminal(&std::io::stdin())
                {
                    report(
                        "the studio needs an interactive terminal",
                        Some(
                            "run easel in a terminal, or use `easel generate` and `easel history` in scripts",
                        ),
                    );
                    return 1;
                }
                match settings.resolve_provider(cli.provider.as_deref(), &config::real_env) {
                    Ok(provider) => {
                        crate::studio::runtime::run(&settings, provider, cli.fresh).await
                    }
                    Err(e) => {
                        report(&e.to_string(), None);
                        1
                    }
                }
            }
            None => 1,
        },
    }
}
