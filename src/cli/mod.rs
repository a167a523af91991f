//! The command line: argument parsing and the headless commands.

pub mod config_cmd;
pub mod generate;
pub mod models;

use crate::config::{self, Paths, Settings};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// easel — a terminal studio for AI image generation.
///
/// Without a command, opens the studio. Without an API key, everything runs on the offline demo
/// backend.
#[derive(Debug, Parser)]
#[command(name = "easel", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/easel/config.toml).
    #[arg(long, global = true, value_name = "PATH", env = "EASEL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Provider profile to use: openai, demo, or a [providers.NAME] from the config.
    #[arg(long, global = true, value_name = "NAME", env = "EASEL_PROVIDER")]
    pub provider: Option<String>,

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
    /// List the models easel knows and what each accepts.
    Models {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// Load paths and settings, or explain why not.
pub fn load_settings(cli: &Cli) -> Result<Settings, String> {
    let paths = Paths::resolve(cli.config.as_deref(), &config::real_env).map_err(|e| e.to_string())?;
    Settings::load(paths).map_err(|e| e.to_string())
}

/// Print a failure the way every command does: what happened, then what to do.
pub fn report(message: &str, hint: Option<&str>) {
    eprintln!("easel: {}", crate::sanitize::line(message));
    if let Some(hint) = hint {
        eprintln!("  hint: {hint}");
    }
}

/// Run the command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let settings = match load_settings(&cli) {
        Ok(s) => s,
        Err(e) => {
            report(&e, Some("run `easel config init --force` to write a fresh commented config"));
            return 1;
        }
    };
    for w in &settings.warnings {
        eprintln!("easel: warning: {w}");
    }
    match cli.command {
        Some(Command::Generate(args)) => generate::run(&settings, cli.provider.as_deref(), args).await,
        Some(Command::Config { action }) => config_cmd::run(&settings, action),
        Some(Command::Models { json }) => models::run(&settings, json),
        None => {
            eprintln!(
                "easel: the interactive studio is not built yet; meanwhile try:\n  easel generate \"a lighthouse at dusk\"\n  easel --help"
            );
            2
        }
    }
}
