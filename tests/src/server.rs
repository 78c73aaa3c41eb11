//! Starting and stopping a real `fieldsync-server` process on loopback for end-to-end tests
//! and the simulator: `serve --dev` in a data directory, on a port it picks or is given.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The demo admin account `serve --dev` creates.
pub const ADMIN: (&str, &str) = ("admin", "fieldsync-quantri");

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("server binary {0} not found: build the fieldsync-tests binaries first")]
    Binary(String),
    #[error("starting fieldsync-server: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("fieldsync-server did not report its address: {0}")]
    NoAddress(String),
}

/// A running server process. Killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub cert_pem: Vec<u8>,
}

/// Path of the server binary built from this source tree: the test crate's own copy of the
/// server command line, next to the running test or tool.
pub fn binary() -> Result<PathBuf, ServerError> {
    if let Some(path) = option_env!("CARGO_BIN_EXE_fieldsync-server-e2e") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("fieldsync-server-e2e");
    if path.exists() {
        Ok(path)
    } else {
        Err(ServerError::Binary(path.display().to_string()))
    }
}

impl ServerProcess {
    /// Starts `serve --dev` on `listen` (e.g. "127.0.0.1:0") with `data_dir`, no demo records.
    pub fn start(data_dir: &Path, listen: &str) -> Result<ServerProcess, ServerError> {
        ServerProcess::start_with(data_dir, listen, &["--demo-households", "0"])
    }

    /// Starts `serve --dev` with extra arguments.
    pub fn start_with(
        data_dir: &Path,
        listen: &str,
        extra: &[&str],
    ) -> Result<ServerProcess, ServerError> {
        let mut args = vec!["--dev", "--listen", listen];
        args.extend_from_slice(extra);
        ServerProcess::spawn(data_dir, &args, &data_dir.join("dev-cert.pem"), None)
    }

    /// Starts `serve --dev` with extra arguments under an open-file limit of `max_open_files`
    /// (soft and hard, as `prlimit` sets it).
    pub fn start_limited(
        data_dir: &Path,
        listen: &str,
        extra: &[&str],
        max_open_files: u64,
    ) -> Result<ServerProcess, ServerError> {
        let mut args = vec!["--dev", "--listen", listen];
        args.extend_from_slice(extra);
        let cert = data_dir.join("dev-cert.pem");
        ServerProcess::spawn(data_dir, &args, &cert, Some(max_open_files))
    }

    /// Starts `serve` as in production (no `--dev`: no demo accounts or data, HSTS sent) with
    /// the certificate and key an earlier `--dev` start made in `data_dir`.
    pub fn start_production(data_dir: &Path, listen: &str) -> Result<ServerProcess, ServerError> {
        let cert = data_dir.join("dev-cert.pem");
        let key = data_dir.join("dev-key.pem");
        let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
        let args = [
            "--listen",
            listen,
            "--tls-cert",
            &cert_arg,
            "--tls-key",
            &key_arg,
        ];
        ServerProcess::spawn(data_dir, &args, &cert, None)
    }

    fn spawn(
        data_dir: &Path,
        args: &[&str],
        cert: &Path,
        max_open_files: Option<u64>,
    ) -> Result<ServerProcess, ServerError> {
        let mut command = Command::new(binary()?);
        if let Some(n) = max_open_files {
            command.env("FIELDSYNC_E2E_MAX_OPEN_FILES", n.to_string());
        }
        let mut child = command
            .arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env(
                "RUST_LOG",
                std::env::var("FIELDSYNC_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ServerError::NoAddress("no stdout".into()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining stdout for the life of the process so it never blocks on a pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("fieldsync listening on https://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                return Err(ServerError::NoAddress("timed out".into()));
            }
        };
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| ServerError::NoAddress(addr.clone()))?;
        let cert_pem = std::fs::read(cert)?;
        Ok(ServerProcess {
            child,
            addr,
            data_dir: data_dir.to_owned(),
            cert_pem,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended (crashed, was OOM-killed or killed), without
    /// waiting; `None` while it runs.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a graceful exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Peak resident memory of the process (VmHWM), in KiB, on Linux.
    pub fn peak_memory_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("fieldsync.sqlite")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
