//! The command line: `serve` (with `--dev` for a self-signed certificate, demo data and demo
//! accounts) and `admin` commands that work on the database directly, for the first admin
//! account and for emergencies such as revoking a lost phone while the API is unreachable.

use crate::accounts::Authority;
use crate::config::{Config, FileConfig};
use crate::http::AppState;
use crate::storage::postgres::{PostgresOptions, PostgresStorage};
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{AccountUpdate, AdminStore, NewUser, Role, Storage};
use crate::{accounts, listener, seed, tls};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "fieldsync-server",
    version,
    about = "fieldsync sync server for Project 8 field data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTPS server.
    Serve(ServeArgs),
    /// Manage accounts and devices directly in the database.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// Development mode: self-signed certificate for localhost, demo data and demo accounts.
    #[arg(long)]
    dev: bool,
    /// Address to listen on (host:port; port 0 picks a free one).
    #[arg(long, env = "FIELDSYNC_LISTEN")]
    listen: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// PEM certificate chain.
    #[arg(long, env = "FIELDSYNC_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, env = "FIELDSYNC_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// TOML file with any of: listen, data_dir, tls_cert, tls_key, log_json,
    /// header_timeout_secs, body_timeout_secs, plan, database, database_pool, database_ca.
    #[arg(long, env = "FIELDSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "FIELDSYNC_LOG_JSON")]
    log_json: bool,
    /// Households of demo data to generate with --dev on an empty database.
    #[arg(long, default_value_t = 300)]
    demo_households: usize,
    /// Seconds a client gets for the TLS handshake and for each request's headers (also how
    /// long an idle connection stays open). Default 15.
    #[arg(long, env = "FIELDSYNC_HEADER_TIMEOUT_SECS")]
    header_timeout_secs: Option<u64>,
    /// Seconds a sync request's body may take to arrive. Default 120.
    #[arg(long, env = "FIELDSYNC_BODY_TIMEOUT_SECS")]
    body_timeout_secs: Option<u64>,
    /// TOML file of the province plan (targets) progress is reported against; default Kon
    /// Tum's plan 3320/KH-UBND (docs/indicators.md has the format).
    #[arg(long, env = "FIELDSYNC_PLAN")]
    plan: Option<PathBuf>,
}

#[derive(Args)]
struct DataArgs {
    /// Directory holding the database (and, with --dev, the certificate).
    #[arg(long, env = "FIELDSYNC_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL database (postgres://user@host:port/db) instead of the SQLite file under
    /// the data directory: several server instances may share it.
    #[arg(long, env = "FIELDSYNC_DATABASE")]
    database: Option<String>,
    /// Connections to PostgreSQL this process keeps at most. Default 16.
    #[arg(long, env = "FIELDSYNC_DATABASE_POOL")]
    database_pool: Option<usize>,
    /// PEM file of the authority that signed the PostgreSQL server's certificate: connect to
    /// PostgreSQL over TLS only, verifying its certificate and host name.
    #[arg(long, env = "FIELDSYNC_DATABASE_CA")]
    database_ca: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account.
    CreateUser {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        username: String,
        /// Read from FIELDSYNC_PASSWORD if not given, to keep it out of shell history.
        #[arg(long, env = "FIELDSYNC_PASSWORD")]
        password: String,
        #[arg(long, value_parser = ["collector", "supervisor", "admin"])]
        role: String,
        /// Comma-separated area codes (communes; districts or provinces for supervisors; * for all).
        #[arg(long, value_delimiter = ',')]
        areas: Vec<String>,
        /// May see support cases (victim data).
        #[arg(long)]
        sensitive: bool,
        /// May give other accounts sensitive access (for admins).
        #[arg(long)]
        can_grant_sensitive: bool,
        /// The person's full name, as the supervisors' page shows it.
        #[arg(long)]
        full_name: Option<String>,
        /// A contact phone number (digits, optionally after a leading +).
        #[arg(long)]
        phone: Option<String>,
    },
    /// Replace a user's assigned areas.
    SetAreas {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        username: String,
        #[arg(long, value_delimiter = ',')]
        areas: Vec<String>,
    },
    /// Set a user's password (operating.md, Password policy); every session and device token
    /// of the account ends: its phones enrol again.
    SetPassword {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        username: String,
        /// Read from FIELDSYNC_PASSWORD if not given, to keep it out of shell history.
        #[arg(long, env = "FIELDSYNC_PASSWORD")]
        password: String,
    },
    /// Disable an account: it can no longer log in, and every device of it is revoked.
    DisableUser {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled account again (its devices stay revoked: phones enrol again).
    EnableUser {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        username: String,
    },
    /// List enrolled devices.
    Devices {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write a consistent copy of the database to a file (safe while the server runs).
    Backup {
        #[command(flatten)]
        data: DataArgs,
        /// Destination file; must not exist.
        #[arg(long)]
        to: PathBuf,
    },
    /// Revoke a device (a lost phone): its token stops working at once.
    RevokeDevice {
        #[command(flatten)]
        data: DataArgs,
        device_id: uuid::Uuid,
    },
    /// Give a PostgreSQL database restored from a dump a new identity, so that phones notice
    /// the restore and push back what the dump lacks (docs/operating.md).
    NewIdentity {
        #[command(flatten)]
        data: DataArgs,
        /// The database the restored one replaces (postgres://…, still readable, e.g. renamed):
        /// its revoked devices, ended tokens, disabled accounts and changed passwords are kept.
        #[arg(long)]
        keep_from: Option<String>,
    },
    /// Replace the database with a backup copy (stop the server first). Phones notice the
    /// restore at their next sync and push back what the backup lacks.
    Restore {
        #[command(flatten)]
        data: DataArgs,
        /// A file written by `admin backup`.
        #[arg(long)]
        from: PathBuf,
    },
}

fn data_dir(data: &DataArgs) -> Result<PathBuf, String> {
    let dir = data
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_DATA_DIR));
    crate::config::create_private_dir(&dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

fn open_storage(data: &DataArgs) -> Result<Box<dyn Storage>, String> {
    match &data.database {
        Some(url) => Ok(Box::new(open_postgres(
            url,
            data.database_pool,
            data.database_ca.as_deref(),
        )?)),
        None => Ok(Box::new(
            SqliteStorage::open(data_dir(data)?.join("fieldsync.sqlite"))
                .map_err(|e| e.to_string())?,
        )),
    }
}

fn open_postgres(
    url: &str,
    pool: Option<usize>,
    ca: Option<&Path>,
) -> Result<PostgresStorage, String> {
    let mut options = PostgresOptions::new(url);
    if let Some(pool) = pool {
        options.pool_size = pool;
    }
    options.ca = ca.map(Path::to_path_buf);
    PostgresStorage::open(&options).map_err(|e| format!("opening the database: {e}"))
}

/// A name as one line of a listing: what could forge a line (see
/// [`accounts::breaks_listing`]) is shown escaped.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if accounts::breaks_listing(c) {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

pub fn main() -> ExitCode {
    // A stop request must end `serve` gracefully however early it comes, so its signal
    // handlers go in first, before the arguments are even parsed (the `admin` commands keep
    // the default: a signal ends them, and each of their writes is one transaction).
    let serving = if std::env::args_os().nth(1).is_some_and(|a| a == "serve") {
        match Serving::start() {
            Ok(serving) => Some(serving),
            Err(message) => {
                eprintln!("fieldsync-server: {message}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let cli = Cli::parse();
    let result = match (cli.command, serving) {
        (Command::Serve(args), Some(serving)) => serve(args, serving),
        (Command::Serve(args), None) => Serving::start().and_then(|serving| serve(args, serving)),
        (Command::Admin(cmd), _) => admin(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fieldsync-server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `disable-user` / `enable-user`.
fn switch_user(data: &DataArgs, username: &str, disable: bool) -> Result<(), String> {
    let storage = open_storage(data)?;
    let update = AccountUpdate {
        disabled: Some(disable),
        ..AccountUpdate::default()
    };
    accounts::update_user(storage.as_ref(), Authority::Operator, username, &update)
        .map_err(|e| e.to_string())?;
    if disable {
        println!("{username}: disabled; every device of it is revoked");
    } else {
        println!("{username}: enabled; its phones must enrol again");
    }
    Ok(())
}

fn admin(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::CreateUser {
            data,
            username,
            password,
            role,
            areas,
            sensitive,
            can_grant_sensitive,
            full_name,
            phone,
        } => {
            let storage = open_storage(&data)?;
            let role = Role::parse(&role).ok_or("unknown role")?;
            let user = accounts::create_user(
                storage.as_ref(),
                Authority::Operator,
                &NewUser {
                    username,
                    password,
                    role,
                    sensitive_access: sensitive,
                    areas,
                    can_grant_sensitive,
                    full_name,
                    phone,
                },
            )
            .map_err(|e| e.to_string())?;
            println!(
                "created {} ({}) areas: {}",
                user.username,
                user.role.as_str(),
                user.areas.join(",")
            );
        }
        AdminCommand::SetAreas {
            data,
            username,
            areas,
        } => {
            let storage = open_storage(&data)?;
            let update = AccountUpdate {
                areas: Some(areas),
                ..AccountUpdate::default()
            };
            let user =
                accounts::update_user(storage.as_ref(), Authority::Operator, &username, &update)
                    .map_err(|e| e.to_string())?;
            println!("{} areas: {}", user.username, user.areas.join(","));
        }
        AdminCommand::SetPassword {
            data,
            username,
            password,
        } => {
            let storage = open_storage(&data)?;
            accounts::set_password(storage.as_ref(), Authority::Operator, &username, &password)
                .map_err(|e| e.to_string())?;
            println!("{username}: password changed; its sessions and devices must log in again");
        }
        AdminCommand::DisableUser { data, username } => switch_user(&data, &username, true)?,
        AdminCommand::EnableUser { data, username } => switch_user(&data, &username, false)?,
        AdminCommand::Devices { data } => {
            for d in open_storage(&data)?
                .list_devices()
                .map_err(|e| e.to_string())?
            {
                println!(
                    "{}\t{}\t{}\t{}",
                    d.id,
                    one_line(&d.username),
                    one_line(&d.name),
                    if d.revoked { "revoked" } else { "active" }
                );
            }
        }
        AdminCommand::Backup { data, to } => {
            if to.exists() {
                return Err(format!("{} exists; choose a new file", to.display()));
            }
            open_storage(&data)?
                .backup(&to)
                .map_err(|e| e.to_string())?;
            let stats = SqliteStorage::open(&to)
                .and_then(|copy| copy.stats())
                .map_err(|e| e.to_string())?;
            println!(
                "backed up {} records, {} changes to {}",
                stats.records,
                stats.changes,
                to.display()
            );
        }
        AdminCommand::RevokeDevice { data, device_id } => {
            open_storage(&data)?
                .revoke_device(device_id)
                .map_err(|e| e.to_string())?;
            println!("revoked {device_id}");
        }
        AdminCommand::NewIdentity { data, keep_from } => {
            let Some(url) = &data.database else {
                return Err(
                    "new-identity is for PostgreSQL (--database); a SQLite backup copy \
                            gets its new identity when `admin backup` writes it"
                        .into(),
                );
            };
            let ca = data.database_ca.as_deref();
            let restored = open_postgres(url, Some(1), ca)?;
            let replaced = match &keep_from {
                Some(old) => Some(
                    open_postgres(old, Some(1), ca)?
                        .keep_out()
                        .map_err(|e| format!("reading the replaced database: {e}"))?,
                ),
                None => None,
            };
            let (id, carried) = restored
                .new_identity_keeping(&replaced.unwrap_or_default())
                .map_err(|e| e.to_string())?;
            println!("server identity is now {id}; restart every server instance");
            match keep_from {
                Some(_) => println!(
                    "kept from the replaced database: {} revoked devices, {} ended tokens, {} disabled accounts, {} changed passwords",
                    carried.revoked_devices, carried.ended_tokens, carried.disabled_accounts, carried.passwords
                ),
                None => println!(
                    "warning: without --keep-from, revoke again any device revoked, and change \
                     again any password changed, since the dump was taken"
                ),
            }
        }
        AdminCommand::Restore { data, from } => {
            if data.database.is_some() {
                return Err("restore a PostgreSQL database with pg_restore, then run \
                            `admin new-identity` (docs/operating.md)"
                    .into());
            }
            let dir = data_dir(&data)?;
            let restored = crate::restore::restore(&dir.join("fieldsync.sqlite"), &from)
                .map_err(|e| e.to_string())?;
            println!(
                "restored {} records, {} changes from {}; server identity is now {}",
                restored.records,
                restored.changes,
                from.display(),
                restored.server_id
            );
            match restored.carried {
                Ok(c) => println!(
                    "kept from the replaced database: {} revoked devices, {} ended tokens, {} disabled accounts, {} changed passwords",
                    c.revoked_devices, c.ended_tokens, c.disabled_accounts, c.passwords
                ),
                Err(e) => println!(
                    "warning: the replaced database could not be read ({e}); revoke again any device revoked, \
                     and change again any password changed, since the backup was taken"
                ),
            }
        }
    }
    Ok(())
}

/// The runtime `serve` runs on, listening for stop signals from the moment it exists.
struct Serving {
    runtime: tokio::runtime::Runtime,
    stop: StopSignals,
}

impl Serving {
    fn start() -> Result<Serving, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the runtime: {e}"))?;
        let stop = {
            let _context = runtime.enter();
            StopSignals::listen().map_err(|e| format!("installing signal handlers: {e}"))?
        };
        Ok(Serving { runtime, stop })
    }
}

/// SIGTERM and SIGINT (Ctrl-C), caught from start-up on: one arriving before the server
/// listens is kept, and ends it as soon as it does.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    #[cfg(unix)]
    fn listen() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn listen() -> std::io::Result<StopSignals> {
        Ok(StopSignals {})
    }

    /// Whether a stop was requested already (during start-up), without waiting.
    fn came(&mut self) -> bool {
        use futures_util::FutureExt;
        #[cfg(unix)]
        return self.term.recv().now_or_never().is_some()
            || self.interrupt.recv().now_or_never().is_some();
        #[cfg(not(unix))]
        false
    }

    /// Completes when a stop was requested.
    async fn requested(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.interrupt.recv() => {},
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received");
    }
}

fn serve(args: ServeArgs, serving: Serving) -> Result<(), String> {
    let Serving { runtime, stop } = serving;
    // Before anything opens a file: the connection cap follows from the limit.
    let open_file_limit = listener::raise_open_file_limit();
    let file = match &args.config {
        Some(path) => FileConfig::read(path).map_err(|e| e.to_string())?,
        None => FileConfig::default(),
    };
    let cli = FileConfig {
        listen: args.listen,
        data_dir: args.data.data_dir,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        log_json: args.log_json.then_some(true),
        header_timeout_secs: args.header_timeout_secs,
        body_timeout_secs: args.body_timeout_secs,
        plan: args.plan,
        database: args.data.database,
        database_pool: args.data.database_pool,
        database_ca: args.data.database_ca,
    };
    let config = Config::resolve(cli, file, args.dev).map_err(|e| e.to_string())?;
    init_logging(config.log_json);
    crate::config::create_private_dir(&config.data_dir)
        .map_err(|e| format!("creating {}: {e}", config.data_dir.display()))?;
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => tls::dev_cert(&config.data_dir).map_err(|e| e.to_string())?,
    };
    let tls_config = tls::load(&cert, &key).map_err(|e| e.to_string())?;
    // A plan file with a mistake stops the start, rather than reporting against wrong targets.
    let plan = config
        .plan
        .as_deref()
        .map(crate::indicators::Plan::read)
        .transpose()
        .map_err(|e| e.to_string())?;
    let storage: Arc<dyn Storage> = match &config.database {
        Some(url) => Arc::new(open_postgres(
            url,
            Some(config.database_pool),
            config.database_ca.as_deref(),
        )?),
        None => Arc::new(SqliteStorage::open(config.database_path()).map_err(|e| e.to_string())?),
    };
    if config.dev {
        let added =
            seed::seed(storage.as_ref(), args.demo_households).map_err(|e| e.to_string())?;
        tracing::info!(records = added, "demo data ready");
    }
    let state = AppState::new(storage, Some(config.data_dir.clone()), config.timeouts)
        .map_err(|e| format!("starting worker threads: {e}"))?
        .with_hsts(!config.dev);
    let state = match plan {
        Some(plan) => state.with_plan(plan),
        None => state,
    };
    let max_connections = listener::connection_cap(open_file_limit);
    tracing::info!(?open_file_limit, max_connections, "connection cap");
    runtime.block_on(async move {
        let mut stop = stop;
        if stop.came() {
            tracing::info!("stopped during start-up");
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("binding {}: {e}", config.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Tests and scripts read this line to find the port.
        println!("fieldsync listening on https://{addr}");
        if config.dev {
            println!(
                "certificate (self-signed, trust it in clients): {}",
                cert.display()
            );
            println!("demo accounts (username / password):");
            for (user, password, role, areas, _) in seed::DEMO_ACCOUNTS {
                println!(
                    "  {user} / {password}  ({}, areas: {})",
                    role.as_str(),
                    areas.join(",")
                );
            }
            println!(
                "try: curl --cacert {} https://localhost:{}/v1/health",
                cert.display(),
                addr.port()
            );
        }
        listener::serve(
            listener,
            tls_config,
            state,
            config.timeouts,
            max_connections,
            stop.requested(),
        )
        .await;
        Ok::<(), String>(())
    })
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
