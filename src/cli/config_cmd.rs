//! `easel config path` and `easel config init`.

use crate::config::{Paths, Settings, TEMPLATE};
use crate::store::files::{create_private_dir, write_atomic};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the config file and data folder paths.
    Path,
    /// Write a commented config file with every setting and its default.
    Init {
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// Only the paths are needed: both actions must work when the config file is broken.
pub fn run(paths: &Paths, action: ConfigAction) -> i32 {
    match action {
        ConfigAction::Path => {
            // The paths are printed in any case; a file that does not load is then explained,
            // and the exit status says so.
            let loaded = Settings::load(paths.clone());
            let state = match &loaded {
                Ok(s) if !s.file_exists => " (not created yet: easel config init)",
                _ => "",
            };
            println!("config: {}{state}", paths.config_file.display());
            println!("data:   {}", paths.data_dir.display());
            match loaded {
                Ok(s) => {
                    for w in &s.warnings {
                        eprintln!("easel: warning: {w}");
                    }
                    0
                }
                Err(e) => {
                    super::report(&e.to_string(), Some(super::BROKEN_CONFIG_HINT));
                    1
                }
            }
        }
        ConfigAction::Init { force } => {
            let file = &paths.config_file;
            if file.exists() && !force {
                super::report(
                    &format!("{} already exists", file.display()),
                    Some("add --force to replace it with the commented defaults"),
                );
                return 1;
            }
            if let Some(dir) = file.parent()
                && let Err(e) = create_private_dir(dir)
            {
                super::report(
                    &crate::store::files::describe_io_error("create the folder", dir, &e),
                    None,
                );
                return 1;
            }
            match write_atomic(file, TEMPLATE.as_bytes()) {
                Ok(()) => {
                    println!("wrote {}", file.display());
                    0
                }
                Err(e) => {
                    super::report(
                        &crate::store::files::describe_io_error("write", file, &e),
                        None,
                    );
                    1
                }
            }
        }
    }
}
