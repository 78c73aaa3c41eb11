//! Server configuration from flags, environment variables and an optional TOML file, in that
//! order of precedence, over built-in defaults.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_DATA_DIR: &str = "fieldsync-data";

/// How long a client may take, per connection and request. A slower client is cut off, so
/// that an idle or trickling connection cannot hold the server's memory or file descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To complete the TLS handshake, and to send a request's headers (counted from the end of
    /// the previous request: also how long an idle kept-alive connection stays open).
    pub header: std::time::Duration,
    /// For a sync request's body to arrive: 1 MiB at 2G speed takes about two minutes.
    pub body: std::time::Duration,
}

impl Timeouts {
    /// For a whole request: its body, then the work (the response is written at the client's
    /// pace afterwards).
    pub fn request(&self) -> std::time::Duration {
        self.body + std::time::Duration::from_secs(30)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: std::time::Duration::from_secs(15),
            body: std::time::Duration::from_secs(120),
        }
    }
}

/// The settings a TOML file may hold; every one optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub log_json: Option<bool>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    /// The province plan (targets) progress is reported against; Kon Tum's if absent.
    pub plan: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://user@host:port/db`) instead of the SQLite file.
    pub database: Option<String>,
    /// Connections this instance keeps to PostgreSQL at most.
    pub database_pool: Option<usize>,
    /// PEM certificate(s) of the authority that signed the PostgreSQL server's certificate:
    /// when given, every connection to PostgreSQL uses TLS and verifies it.
    pub database_ca: Option<PathBuf>,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub log_json: bool,
    pub dev: bool,
    pub timeouts: Timeouts,
    pub plan: Option<PathBuf>,
    /// PostgreSQL, when given; the SQLite file under `data_dir` otherwise.
    pub database: Option<String>,
    pub database_pool: usize,
    pub database_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("listen address {0:?} is not host:port")]
    Listen(String),
    #[error("TLS needs both a certificate and a key (or --dev for a self-signed one)")]
    MissingTls,
}

/// Creates the data directory (and its parents) readable by its owner only, or makes an
/// existing one so: it holds the database, backups and the TLS key.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(dir)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

impl Config {
    /// Merges command-line/environment values (`cli`, already merged by clap) over the file.
    pub fn resolve(cli: FileConfig, file: FileConfig, dev: bool) -> Result<Config, ConfigError> {
        let listen = cli
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let config = Config {
            listen: listen
                .parse()
                .map_err(|_| ConfigError::Listen(listen.clone()))?,
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            tls_cert: cli.tls_cert.or(file.tls_cert),
            tls_key: cli.tls_key.or(file.tls_key),
            log_json: cli.log_json.or(file.log_json).unwrap_or(false),
            dev,
            plan: cli.plan.or(file.plan),
            database: cli.database.or(file.database),
            database_pool: cli
                .database_pool
                .or(file.database_pool)
                .unwrap_or(crate::storage::postgres::DEFAULT_POOL_SIZE),
            database_ca: cli.database_ca.or(file.database_ca),
            timeouts: {
                let default = Timeouts::default();
                let secs = std::time::Duration::from_secs;
                Timeouts {
                    header: cli
                        .header_timeout_secs
                        .or(file.header_timeout_secs)
                        .map_or(default.header, secs),
                    body: cli
                        .body_timeout_secs
                        .or(file.body_timeout_secs)
                        .map_or(default.body, secs),
                }
            },
        };
        if !dev && (config.tls_cert.is_none() || config.tls_key.is_none()) {
            return Err(ConfigError::MissingTls);
        }
        Ok(config)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("fieldsync.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file = FileConfig {
            listen: Some("127.0.0.1:9000".into()),
            data_dir: Some("/srv/fs".into()),
            ..FileConfig::default()
        };
        let cli = FileConfig {
            listen: Some("127.0.0.1:9443".into()),
            ..FileConfig::default()
        };
        let c = Config::resolve(cli, file, true).unwrap();
        assert_eq!(c.listen.port(), 9443);
        assert_eq!(c.data_dir, PathBuf::from("/srv/fs"));
        assert!(!c.log_json);
    }

    #[test]
    fn production_needs_tls_files_and_unknown_keys_are_refused() {
        assert!(matches!(
            Config::resolve(FileConfig::default(), FileConfig::default(), false),
            Err(ConfigError::MissingTls)
        ));
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }
}
