//! A private HOME, config folder and data folder for running the real binary, and commands with
//! a clean environment pointed at them. Each suite adds the constructors and helpers it needs
//! in its own `impl Sandbox` block.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Sandbox {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    pub config_home: PathBuf,
    /// Not created: easel must create it (privately) itself.
    pub data: PathBuf,
}

impl Sandbox {
    /// Fresh folders: `home` and `config` made, `data` only named.
    pub fn folders() -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        let home = root.path().join("home");
        let config_home = root.path().join("config");
        let data = root.path().join("data");
        std::fs::create_dir_all(&home).expect("home folder");
        std::fs::create_dir_all(&config_home).expect("config folder");
        Sandbox {
            root,
            home,
            config_home,
            data,
        }
    }

    /// `program` with a clean environment: no OPENAI_*, no EASEL_* besides the data folder.
    pub fn clean_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env("EASEL_DATA_DIR", &self.data)
            .env("LANG", "C.UTF-8")
            // In-process: each command owns the data folder (tests/service_e2e.rs covers the
            // service, which would otherwise outlive the test).
            .env("EASEL_SERVICE", "off")
            .stdin(Stdio::null());
        cmd
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_home.join("easel").join("config.toml")
    }
}
