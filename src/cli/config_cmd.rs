//! `easel config path` and `easel config init`.

use crate::config::{Settings, TEMPLATE};
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

pub fn run(settings: &Settings, action: ConfigAction) -> i32 {
    let paths = &settings.paths;
    match action {
        ConfigAction::Path => {
            let state = if settings.file_exists { "" } else { " (not created yet: easel config init)" };
            println!("config: {}{state}", paths.config_file.display());
            println!("data:   {}", paths.data_dir.display());
            0
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
            if let Some(dir) = file.parent() {
                if let Err(e) = create_private_dir(dir) {
                    super::report(&crate::store::files::describe_io_error("create the folder", dir, &e), None);
                    return 1;
                }
            }
            match write_atomic(file, TEMPLATE.as_bytes()) {
                Ok(()) => {
                    println!("wrote {}", file.display());
                    0
                }
                Err(e) => {
                    super::report(&crate::store::files::describe_io_error("write", file, &e), None);
                    1
                }
            }
        }
    }
}
