//! Configuration: the TOML file, the environment (as the official SDKs read it), paths, and
//! provider profiles. Loading is pure apart from reading the one file; the environment comes in as
//! a lookup function so tests can give their own.

use crate::api::{ClientOptions, ProviderRules};
use crate::catalog::{self, Catalog, Dialect, Field, ModelOverride};
use crate::secret::ApiKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of the built-in OpenAI profile.
pub const OPENAI: &str = "openai";
/// The name of the offline demo backend.
pub const DEMO: &str = "demo";

/// Defaults for new requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    pub model: String,
    pub size: Option<String>,
    pub quality: Option<String>,
    pub n: u8,
    pub output_format: Option<String>,
    pub background: Option<String>,
    pub moderation: Option<String>,
    pub stream: bool,
    pub partial_images: Option<u8>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            model: catalog::DEFAULT_MODEL.into(),
            size: None,
            quality: None,
            n: 1,
            output_format: None,
            background: None,
            moderation: None,
            stream: false,
            partial_images: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    pub max_retries: u32,
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
    pub stream_idle_timeout_secs: u64,
    pub download_max_mb: u64,
    pub download_timeout_secs: u64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            max_retries: 2,
            timeout_secs: 600,
            connect_timeout_secs: 5,
            stream_idle_timeout_secs: 300,
            download_max_mb: 50,
            download_timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Queue {
    /// Jobs running at once, over all providers.
    pub concurrency: usize,
    /// Pick up jobs left queued by an earlier run.
    pub resume_queue: bool,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            concurrency: 2,
            resume_queue: true,
        }
    }
}

/// How the studio says a job ended while the terminal was not in focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    /// A desktop notification (OSC 777, also understood as OSC 9 by many terminals) with a bell.
    Auto,
    Osc9,
    Osc777,
    Bell,
    Off,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ui {
    /// Tell when a job ends while the terminal is not in focus.
    pub notify: Notify,
    /// Clicks focus panes and pick rows, the wheel scrolls (off: the terminal's own selection).
    pub mouse: bool,
    /// Pictures without graphics: half-blocks, or quadrants (twice the detail across).
    pub symbols: crate::symbols::Symbols,
    /// The thumbnail cache's size in MB (least recently used thumbnails go first).
    pub thumb_cache_mb: u64,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            notify: Notify::Auto,
            mouse: true,
            symbols: crate::symbols::Symbols::Half,
            thumb_cache_mb: 256,
        }
    }
}

/// What may be spent (docs/configuration.md#budget). Spend is counted from history: the cost
/// priced from the usage a server reported, else the catalogue's estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    /// Dollars a day (local time) may cost; unset: no limit.
    pub daily_usd: Option<f64>,
    /// Dollars a calendar month (local time) may cost; unset: no limit.
    pub monthly_usd: Option<f64>,
    /// The studio asks before queueing anything estimated above this (0: always asks).
    pub confirm_above_usd: Option<f64>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            daily_usd: None,
            monthly_usd: None,
            confirm_above_usd: Some(1.0),
        }
    }
}

impl Budget {
    fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("daily_usd", self.daily_usd),
            ("monthly_usd", self.monthly_usd),
            ("confirm_above_usd", self.confirm_above_usd),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(format!(
                    "budget.{name} must be a number of dollars, 0 or more (not {v})"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct History {
    /// Deleted generations stay in the trash this many days, then go for good (0: until
    /// `easel history empty-trash`).
    pub trash_days: u32,
}

impl Default for History {
    fn default() -> Self {
        History { trash_days: 30 }
    }
}

/// How commands reach the store: through the data folder's service (jobs outlive the
/// terminal, several clients share one queue) or inside each command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceMode {
    #[default]
    Service,
    InProcess,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Service {
    /// "service" (default) or "in-process"; `EASEL_SERVICE=off` chooses in-process too.
    pub mode: ServiceMode,
    /// The service stops after this long with no client and no job (0: never).
    pub idle_exit_secs: u64,
}

impl Default for Service {
    fn default() -> Self {
        Service {
            mode: ServiceMode::Service,
            idle_exit_secs: 300,
        }
    }
}

impl Service {
    /// The mode in effect: `EASEL_SERVICE=off` (or `in-process`) wins over the file.
    pub fn effective_mode(&self) -> ServiceMode {
        match std::env::var("EASEL_SERVICE")
            .ok()
            .as_deref()
            .map(str::trim)
        {
            Some("off" | "in-process" | "0" | "no") => ServiceMode::InProcess,
            Some("on" | "service" | "1" | "yes") => ServiceMode::Service,
            _ => self.mode,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Demo {
    /// Simulated time to generate one request.
    pub latency_ms: u64,
    /// Partial images sent while "generating" when the request streams.
    pub partial_images: u8,
}

impl Default for Demo {
    fn default() -> Self {
        Demo {
            latency_ms: 1500,
            partial_images: 2,
        }
    }
}

/// A `[providers.NAME]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// Up to and including the version, e.g. `https://api.openai.com/v1`.
    pub base_url: Option<String>,
    /// The environment variable holding the key (default OPENAI_API_KEY).
    pub api_key_env: Option<String>,
    /// A key written in the file itself (better: use api_key_env; easel warns if the file is
    /// readable by others).
    pub api_key: Option<String>,
    pub dialect: Option<Dialect>,
    /// The optional fields this server accepts; anything else is refused before sending.
    pub fields: Option<Vec<Field>>,
    pub organization: Option<String>,
    pub project: Option<String>,
    /// The model to use with this provider when none is given.
    pub model: Option<String>,
    /// Whether this server needs a key (default: yes for openai and for profiles that name
    /// api_key_env; LocalAI often needs none).
    pub requires_key: Option<bool>,
    /// Where images of `url` answers may be downloaded from: "public" (default: public hosts
    /// and the provider's own), "provider", "any" or "none".
    pub download_hosts: Option<crate::api::DownloadHosts>,
    /// Redirects one download may follow (default 5).
    pub download_max_redirects: Option<u32>,
    /// Whether this (DALL·E-dialect) server serves `POST /images/variations` (default: no;
    /// OpenAI itself no longer does).
    pub variations: Option<bool>,
}

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// The provider used when `--provider` is not given.
    pub provider: Option<String>,
    pub defaults: Defaults,
    pub network: Network,
    pub queue: Queue,
    pub history: History,
    pub budget: Budget,
    pub service: Service,
    pub ui: Ui,
    pub demo: Demo,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub models: BTreeMap<String, ModelOverride>,
    /// Key bindings: `[keys.CONTEXT] action = "key"` (docs/keybindings.md).
    pub keys: crate::studio::keymap::KeyConfig,
}

/// A config problem, said in a way that points at the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where easel keeps things.
#[derive(Debug, Clone, PartialEq)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
}

/// An environment lookup: `std::env::var` in the program, a table in tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Read a variable from the real environment, ignoring empty values.
pub fn real_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn absolute(v: Option<String>) -> Option<PathBuf> {
    v.map(PathBuf::from).filter(|p| p.is_absolute())
}

impl Paths {
    /// Resolve paths: `--config`, then `EASEL_CONFIG`, then `$XDG_CONFIG_HOME/easel/config.toml`;
    /// data in `EASEL_DATA_DIR`, else `$XDG_DATA_HOME/easel`.
    pub fn resolve(cli_config: Option<&Path>, env: Env) -> Result<Paths, ConfigError> {
        let home = || {
            env("HOME").map(PathBuf::from).or_else(|| etcetera::home_dir().ok()).ok_or_else(|| {
                ConfigError("cannot find the home directory: set HOME, or EASEL_CONFIG and EASEL_DATA_DIR".into())
            })
        };
        let cli_config = cli_config.filter(|p| !p.as_os_str().is_empty());
        let config_file = match (cli_config, env("EASEL_CONFIG")) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => absolute(env("XDG_CONFIG_HOME"))
                .map_or_else(|| home().map(|h| h.join(".config")), Ok)?
                .join("easel")
                .join("config.toml"),
        };
        let data_dir = match env("EASEL_DATA_DIR") {
            Some(p) => PathBuf::from(p),
            None => absolute(env("XDG_DATA_HOME"))
                .map_or_else(|| home().map(|h| h.join(".local").join("share")), Ok)?
                .join("easel"),
        };
        Ok(Paths {
            config_file,
            data_dir,
        })
    }
}

/// The config file with the built-in catalogue and the paths it was found with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub paths: Paths,
    pub file: ConfigFile,
    pub catalog: Catalog,
    /// The studio's keys: the defaults with the config's [keys] applied (parsed once, here).
    pub keymap: crate::studio::keymap::Keymap,
    /// Whether the config file exists (a missing file means all defaults).
    pub file_exists: bool,
    /// Things to tell the user once (for example a key in a file others can read).
    pub warnings: Vec<String>,
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parse config text; errors name the file, line and problem.
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    toml::from_str::<ConfigFile>(text).map_err(|e| {
        let place = e.span().map(|s| {
            let (line, col) = line_col(text, s.start);
            format!(", line {line}, column {col}")
        });
        ConfigError(format!(
            "config file {}{}: {}",
            path.display(),
            place.unwrap_or_default(),
            crate::sanitize::line(e.message().trim())
        ))
    })
}

impl Settings {
    /// The thumbnail cache (`$XDG_CACHE_HOME/easel/thumbs`, else in the data folder).
    pub fn thumbs(&self) -> crate::thumbs::Thumbs {
        let dir =
            crate::thumbs::default_dir().unwrap_or_else(|| self.paths.data_dir.join("thumbs"));
        crate::thumbs::Thumbs::new(dir, self.file.ui.thumb_cache_mb.saturating_mul(1 << 20))
    }

    /// The environment variables that may hold API keys (OPENAI_API_KEY and every profile's
    /// api_key_env): a background service is started without them.
    pub fn key_variables(&self) -> Vec<String> {
        let mut vars = vec!["OPENAI_API_KEY".to_string()];
        vars.extend(
            self.file
                .providers
                .values()
                .filter_map(|p| p.api_key_env.clone()),
        );
        vars
    }

    /// Load the config file (if there is one) and check it.
    pub fn load(paths: Paths) -> Result<Settings, ConfigError> {
        let (file, exists) = match std::fs::read_to_string(&paths.config_file) {
            Ok(text) => (parse(&text, &paths.config_file)?, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (ConfigFile::default(), false),
            Err(e) => {
                return Err(ConfigError(format!(
                    "cannot read config file {}: {e}",
                    paths.config_file.display()
                )));
            }
        };
        let mut settings = Settings::from_file(paths, file)?;
        settings.file_exists = exists;
        if exists {
            settings.warnings.extend(key_permission_warning(
                &settings.paths.config_file,
                &settings.file,
            ));
        }
        Ok(settings)
    }

    /// Settings from an already-parsed file (tests, and `load`).
    pub fn from_file(paths: Paths, file: ConfigFile) -> Result<Settings, ConfigError> {
        let catalog = Catalog::with_overrides(&file.models).map_err(|e| {
            ConfigError(format!("config file {}: {e}", paths.config_file.display()))
        })?;
        // Key bindings are checked now, so a typo is reported by every command, not only when
        // the studio starts.
        let keymap = crate::studio::keymap::Keymap::with_config(&file.keys).map_err(|e| {
            ConfigError(format!("config file {}: {e}", paths.config_file.display()))
        })?;
        if let Err(e) = file.budget.check() {
            return Err(ConfigError(format!(
                "config file {}: {e}",
                paths.config_file.display()
            )));
        }
        if file.queue.concurrency == 0 {
            return Err(ConfigError(format!(
                "config file {}: queue.concurrency must be at least 1",
                paths.config_file.display()
            )));
        }
        for (name, p) in &file.providers {
            if name == DEMO {
                return Err(ConfigError(format!(
                    "config file {}: [providers.demo] is reserved for the built-in offline demo backend; pick another name",
                    paths.config_file.display()
                )));
            }
            if name != OPENAI && p.base_url.is_none() {
                return Err(ConfigError(format!(
                    "config file {}: [providers.{name}] needs a base_url (for example \"http://localhost:8080/v1\")",
                    paths.config_file.display()
                )));
            }
        }
        Ok(Settings {
            paths,
            file,
            catalog,
            keymap,
            file_exists: false,
            warnings: Vec::new(),
        })
    }

    /// Every provider name a user can pick: the built-in ones and the configured ones.
    pub fn provider_names(&self) -> Vec<String> {
        let mut names: Vec<String> = vec![OPENAI.into(), DEMO.into()];
        names.extend(
            self.file
                .providers
                .keys()
                .filter(|k| k.as_str() != OPENAI)
                .cloned(),
        );
        names
    }

    /// Decide which provider to use: `--provider`, else the config's `provider`, else OpenAI when
    /// a key is set and the offline demo otherwise.
    pub fn resolve_provider(
        &self,
        chosen: Option<&str>,
        env: Env,
    ) -> Result<Provider, ConfigError> {
        let explicit = chosen
            .filter(|c| !c.trim().is_empty())
            .map(str::to_string)
            .or_else(|| env("EASEL_PROVIDER"))
            .or_else(|| self.file.provider.clone());
        let name = explicit.clone().unwrap_or_else(|| OPENAI.to_string());
        if name == DEMO {
            return Ok(self.demo_provider(None));
        }
        let profile = match self.file.providers.get(&name) {
            Some(p) => p.clone(),
            None if name == OPENAI => ProviderConfig::default(),
            None => {
                return Err(ConfigError(format!(
                    "no provider named \"{name}\": known providers are {} (add [providers.{name}] to {})",
                    self.provider_names().join(", "),
                    self.paths.config_file.display()
                )));
            }
        };
        let is_openai_profile = name == OPENAI;
        // Only the openai profile falls back to OPENAI_API_KEY: another server must never be
        // sent the OpenAI key just because its profile names no variable.
        let key_env = match (&profile.api_key_env, is_openai_profile) {
            (Some(v), _) => Some(v.clone()),
            (None, true) => Some("OPENAI_API_KEY".to_string()),
            (None, false) => None,
        };
        let key = key_env
            .as_deref()
            .and_then(env)
            .and_then(ApiKey::new)
            .or_else(|| profile.api_key.clone().and_then(ApiKey::new));
        let key_env = key_env.unwrap_or_else(|| format!("[providers.{name}] api_key_env"));
        let is_openai = name == OPENAI;
        let requires_key = profile
            .requires_key
            .unwrap_or(is_openai || profile.api_key_env.is_some());
        if key.is_none() && requires_key {
            if explicit.is_none() {
                return Ok(self.demo_provider(Some(format!(
                    "no API key in {key_env}: using the offline demo backend (set {key_env} to use OpenAI)"
                ))));
            }
            if profile.api_key_env.is_none() && !is_openai_profile {
                return Err(ConfigError(format!(
                    "provider {name} needs an API key: name the variable that holds it with api_key_env in [providers.{name}] (or set requires_key = false)"
                )));
            }
            return Err(ConfigError(format!(
                "provider {name} needs an API key, but {key_env} is not set: export {key_env}=… (or use --provider demo)"
            )));
        }
        // OPENAI_BASE_URL, OPENAI_ORG_ID and OPENAI_PROJECT_ID apply to the openai profile, as
        // in the official SDKs; other profiles say what they need themselves.
        let base_url = match (&profile.base_url, is_openai) {
            (Some(url), _) => url.clone(),
            (None, true) => {
                env("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into())
            }
            (None, false) => String::new(),
        };
        let base_url = if is_openai {
            env("OPENAI_BASE_URL").unwrap_or(base_url)
        } else {
            base_url
        };
        if reqwest::Url::parse(&base_url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            return Err(ConfigError(format!(
                "provider {name}: base URL \"{}\" is not an http or https URL",
                crate::sanitize::line(&base_url)
            )));
        }
        let net = &self.file.network;
        let mut client = ClientOptions::new(if is_openai { "OpenAI" } else { &name }, &base_url);
        client.api_key = key;
        client.organization = profile.organization.clone().or_else(|| {
            if is_openai {
                env("OPENAI_ORG_ID")
            } else {
                None
            }
        });
        client.project = profile.project.clone().or_else(|| {
            if is_openai {
                env("OPENAI_PROJECT_ID")
            } else {
                None
            }
        });
        client.max_retries = net.max_retries;
        client.timeout = Duration::from_secs(net.timeout_secs.max(1));
        client.connect_timeout = Duration::from_secs(net.connect_timeout_secs.max(1));
        client.stream_idle_timeout = Duration::from_secs(net.stream_idle_timeout_secs.max(1));
        client.download_max_bytes = net.download_max_mb.max(1) * 1024 * 1024;
        client.download_timeout = Duration::from_secs(net.download_timeout_secs.max(1));
        if let Some(hosts) = profile.download_hosts {
            client.download_hosts = hosts;
        }
        if let Some(n) = profile.download_max_redirects {
            client.download_max_redirects = n;
        }
        Ok(Provider {
            name: name.clone(),
            kind: ProviderKind::Http(Box::new(client)),
            rules: ProviderRules {
                name,
                dialect: profile.dialect,
                fields: profile.fields.clone(),
                variations: profile.variations.unwrap_or(false),
            },
            model: profile.model.clone(),
            notice: None,
        })
    }

    fn demo_provider(&self, notice: Option<String>) -> Provider {
        Provider {
            notice,
            ..Provider::demo()
        }
    }
}

/// How to reach a provider.
#[derive(Debug, Clone)]
pub enum ProviderKind {
    /// An OpenAI-compatible HTTP server.
    Http(Box<ClientOptions>),
    /// The offline demo backend.
    Demo,
}

/// A provider ready to use.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    pub rules: ProviderRules,
    /// The profile's preferred model.
    pub model: Option<String>,
    /// Something to tell the user about the choice (falling back to the demo, say).
    pub notice: Option<String>,
}

impl Provider {
    /// The offline demo backend.
    pub fn demo() -> Provider {
        Provider {
            name: DEMO.into(),
            kind: ProviderKind::Demo,
            rules: ProviderRules {
                name: DEMO.into(),
                dialect: None,
                fields: None,
                // The demo varies pictures too, offline.
                variations: true,
            },
            model: None,
            notice: None,
        }
    }

    pub fn is_demo(&self) -> bool {
        matches!(self.kind, ProviderKind::Demo)
    }

    /// Whether requests go to OpenAI itself: the openai profile, or a profile whose base URL is
    /// on openai.com. OpenAI's shutdown dates apply there; compatible servers may still serve
    /// the old names.
    pub fn is_openai(&self) -> bool {
        match &self.kind {
            ProviderKind::Demo => false,
            ProviderKind::Http(c) => {
                self.name == OPENAI
                    || reqwest::Url::parse(&c.base_url)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                        .is_some_and(|h| h == "openai.com" || h.ends_with(".openai.com"))
            }
        }
    }

    /// Where a generation request goes, for showing (`--dry-run`); None for the demo. A user
    /// name or password in the base URL is left out: it may be a secret.
    pub fn generations_url(&self) -> Option<String> {
        self.endpoint_url(crate::api::Endpoint::Generations)
    }

    /// Where a request to `endpoint` goes, for showing, as [`Provider::generations_url`].
    pub fn endpoint_url(&self, endpoint: crate::api::Endpoint) -> Option<String> {
        match &self.kind {
            ProviderKind::Demo => None,
            ProviderKind::Http(c) => {
                let url = format!("{}{}", c.base_url, endpoint.path());
                Some(match reqwest::Url::parse(&url) {
                    Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                        let _ = u.set_username("");
                        let _ = u.set_password(None);
                        u.to_string()
                    }
                    _ => url,
                })
            }
        }
    }
}

/// A key written in a config file that others may read deserves a warning.
fn key_permission_warning(path: &Path, file: &ConfigFile) -> Option<String> {
    let holds_key = file.providers.values().any(|p| p.api_key.is_some());
    if !holds_key {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            return Some(format!(
                "{} holds an API key and other users can read it (mode {:o}): run chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    None
}

/// The commented config that `easel config init` writes: every setting with its default.
pub const TEMPLATE: &str = include_str!("config_template.toml");

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn settings(toml_text: &str) -> Settings {
        let paths = Paths {
            config_file: "/c/config.toml".into(),
            data_dir: "/d".into(),
        };
        Settings::from_file(paths.clone(), parse(toml_text, &paths.config_file).unwrap()).unwrap()
    }

    #[test]
    fn template_parses_to_the_defaults() {
        let parsed = parse(TEMPLATE, Path::new("template")).unwrap();
        let expected = ConfigFile {
            providers: parsed.providers.clone(),
            ..ConfigFile::default()
        };
        assert_eq!(parsed, expected);
        assert!(parsed.providers.contains_key("localai"));
    }

    #[test]
    fn paths_follow_xdg_and_overrides() {
        let p = Paths::resolve(None, &env_of(&[("HOME", "/home/u")])).unwrap();
        assert_eq!(
            p.config_file,
            PathBuf::from("/home/u/.config/easel/config.toml")
        );
        assert_eq!(p.data_dir, PathBuf::from("/home/u/.local/share/easel"));
        let p = Paths::resolve(
            None,
            &env_of(&[
                ("HOME", "/h"),
                ("XDG_CONFIG_HOME", "/x/c"),
                ("XDG_DATA_HOME", "/x/d"),
            ]),
        )
        .unwrap();
        assert_eq!(p.config_file, PathBuf::from("/x/c/easel/config.toml"));
        assert_eq!(p.data_dir, PathBuf::from("/x/d/easel"));
        let p = Paths::resolve(
            None,
            &env_of(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "relative")]),
        )
        .unwrap();
        assert_eq!(p.config_file, PathBuf::from("/h/.config/easel/config.toml"));
        let p = Paths::resolve(
            Some(Path::new("/cli.toml")),
            &env_of(&[
                ("HOME", "/h"),
                ("EASEL_CONFIG", "/env.toml"),
                ("EASEL_DATA_DIR", "/data"),
            ]),
        )
        .unwrap();
        assert_eq!(p.config_file, PathBuf::from("/cli.toml"));
        assert_eq!(p.data_dir, PathBuf::from("/data"));
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "[defaults]\nmodle = \"x\"\n",
                "line 2, column 1: unknown field `modle`",
            ),
            ("[network]\nmax_retries = \"two\"\n", "line 2"),
            ("provider = \n", "line 1"),
            ("[queue]\nconcurrency = -1\n", "line 2"),
        ];
        for (text, needle) in cases {
            let e = parse(text, Path::new("/c/config.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("config file /c/config.toml"), "{e}");
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let paths = Paths {
            config_file: "/c/config.toml".into(),
            data_dir: "/d".into(),
        };
        let bad = parse(
            "[providers.local]\ndialect = \"dalle\"\n",
            &paths.config_file,
        )
        .unwrap();
        assert!(
            Settings::from_file(paths.clone(), bad)
                .unwrap_err()
                .0
                .contains("needs a base_url")
        );
        let bad = parse("[models.mine]\nn_max = 2\n", &paths.config_file).unwrap();
        assert!(
            Settings::from_file(paths, bad)
                .unwrap_err()
                .0
                .contains("like =")
        );
    }

    #[test]
    fn provider_choice() {
        let s = settings("");
        // No key, nothing chosen: the demo, with a notice saying why.
        let p = s.resolve_provider(None, &env_of(&[])).unwrap();
        assert!(p.is_demo());
        assert!(p.notice.unwrap().contains("OPENAI_API_KEY"));
        // Explicit openai without a key is an error that says what to set.
        let e = s
            .resolve_provider(Some("openai"), &env_of(&[]))
            .unwrap_err();
        assert!(e.0.contains("export OPENAI_API_KEY"));
        // With a key: OpenAI, honouring the SDK variables.
        let env = env_of(&[
            ("OPENAI_API_KEY", "sk-x"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/"),
            ("OPENAI_ORG_ID", "org-1"),
            ("OPENAI_PROJECT_ID", "proj-1"),
        ]);
        let p = s.resolve_provider(None, &env).unwrap();
        let ProviderKind::Http(c) = p.kind else {
            panic!("not http")
        };
        assert_eq!(c.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(c.organization.as_deref(), Some("org-1"));
        assert_eq!(c.project.as_deref(), Some("proj-1"));
        assert_eq!(c.api_key.unwrap().expose(), "sk-x");
        assert!(
            matches!(s.resolve_provider(Some("nope"), &env).unwrap_err().0, ref m if m.contains("known providers are openai, demo"))
        );
    }

    /// OpenAI's shutdown dates apply to the openai profile and to profiles on openai.com only.
    #[test]
    fn which_providers_are_openai() {
        let s = settings(
            "[providers.local]\nbase_url = \"http://localhost:8080/v1\"\nrequires_key = false\n[providers.proxy]\nbase_url = \"https://API.openai.com/v1\"\nrequires_key = false\n[providers.lookalike]\nbase_url = \"https://openai.com.example.net/v1\"\nrequires_key = false\n",
        );
        let env = env_of(&[("OPENAI_API_KEY", "sk-x")]);
        let is_openai = |name: Option<&str>| s.resolve_provider(name, &env).unwrap().is_openai();
        assert!(is_openai(None));
        assert!(is_openai(Some("openai")));
        assert!(is_openai(Some("proxy")));
        assert!(!is_openai(Some("local")));
        assert!(!is_openai(Some("lookalike")));
        assert!(!is_openai(Some("demo")));
        let p = s.resolve_provider(Some("local"), &env).unwrap();
        assert_eq!(
            p.generations_url().as_deref(),
            Some("http://localhost:8080/v1/images/generations")
        );
        let s = settings(
            "[providers.basic]\nbase_url = \"https://me:s3cret@img.example/v1\"\nrequires_key = false\n",
        );
        let url = s
            .resolve_provider(Some("basic"), &env)
            .unwrap()
            .generations_url()
            .unwrap();
        assert_eq!(url, "https://img.example/v1/images/generations");
    }

    #[test]
    fn download_policy_per_provider() {
        let s = settings(
            "[providers.local]\nbase_url = \"http://localhost:8080/v1\"\nrequires_key = false\ndownload_hosts = \"any\"\ndownload_max_redirects = 2\n",
        );
        let p = s.resolve_provider(Some("local"), &env_of(&[])).unwrap();
        let ProviderKind::Http(c) = &p.kind else {
            panic!("not http")
        };
        assert_eq!(c.download_hosts, crate::api::DownloadHosts::Any);
        assert_eq!(c.download_max_redirects, 2);
        let p = settings("")
            .resolve_provider(None, &env_of(&[("OPENAI_API_KEY", "sk-x")]))
            .unwrap();
        let ProviderKind::Http(c) = &p.kind else {
            panic!("not http")
        };
        assert_eq!(c.download_hosts, crate::api::DownloadHosts::Public);
        assert_eq!(c.download_max_redirects, 5);
        let bad = parse(
            "[providers.x]\nbase_url = \"http://h/v1\"\ndownload_hosts = \"everywhere\"\n",
            Path::new("/c/config.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("public"), "{bad}");
    }

    #[test]
    fn profiles() {
        let s = settings(
            "provider = \"local\"\n[providers.local]\nbase_url = \"http://localhost:8080/v1\"\ndialect = \"dalle\"\nrequires_key = false\nfields = [\"n\", \"size\", \"response_format\"]\nmodel = \"stablediffusion\"\n[providers.xai]\nbase_url = \"https://api.x.ai/v1\"\napi_key_env = \"XAI_API_KEY\"\n",
        );
        let p = s
            .resolve_provider(None, &env_of(&[("OPENAI_BASE_URL", "http://ignored/v1")]))
            .unwrap();
        assert_eq!(p.name, "local");
        assert_eq!(p.model.as_deref(), Some("stablediffusion"));
        let ProviderKind::Http(c) = &p.kind else {
            panic!("not http")
        };
        assert_eq!(c.base_url, "http://localhost:8080/v1");
        assert!(c.api_key.is_none());
        assert_eq!(p.rules.fields.as_ref().unwrap().len(), 3);
        let e = s.resolve_provider(Some("xai"), &env_of(&[])).unwrap_err();
        assert!(e.0.contains("XAI_API_KEY"), "{e}");
        let p = s
            .resolve_provider(Some("xai"), &env_of(&[("XAI_API_KEY", "k")]))
            .unwrap();
        let ProviderKind::Http(c) = &p.kind else {
            panic!("not http")
        };
        assert_eq!(c.provider, "xai");
    }

    #[test]
    fn other_servers_never_get_the_openai_key() {
        let s = settings(
            "[providers.local]\nbase_url = \"http://localhost:8080/v1\"\nrequires_key = false\n",
        );
        let p = s
            .resolve_provider(Some("local"), &env_of(&[("OPENAI_API_KEY", "sk-openai")]))
            .unwrap();
        let ProviderKind::Http(c) = &p.kind else {
            panic!("not http")
        };
        assert!(c.api_key.is_none());
        let s = settings(
            "[providers.strict]\nbase_url = \"http://localhost:8080/v1\"\nrequires_key = true\n",
        );
        let e = s
            .resolve_provider(Some("strict"), &env_of(&[("OPENAI_API_KEY", "sk-openai")]))
            .unwrap_err();
        assert!(e.0.contains("api_key_env"), "{e}");
        // An empty --provider counts as not given.
        assert!(
            s.resolve_provider(Some(""), &env_of(&[]))
                .unwrap()
                .is_demo()
        );
    }

    #[test]
    fn key_in_a_readable_file_warns() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[providers.openai]\napi_key = \"sk-file\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s = Settings::load(Paths {
            config_file: path.clone(),
            data_dir: dir.path().into(),
        })
        .unwrap();
        assert!(s.warnings[0].contains("chmod 600"), "{:?}", s.warnings);
        assert!(!s.warnings[0].contains("sk-file"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = Settings::load(Paths {
            config_file: path,
            data_dir: dir.path().into(),
        })
        .unwrap();
        assert!(s.warnings.is_empty());
    }
}
