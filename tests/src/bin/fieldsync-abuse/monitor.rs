//! Watching the server process from `/proc`: resident memory every 50 ms, open file
//! descriptors every 500 ms, and a hard memory cap past which the server is killed so that an
//! attack that would exhaust memory cannot endanger the machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Resident memory past which the server is killed (SIGKILL) and the attack recorded as
/// stopped: 4 GiB.
pub const RSS_CAP_KIB: u64 = 4 * 1024 * 1024;
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// File descriptors are counted on every n-th sample (listing the directory costs more).
const FDS_EVERY: u32 = 10;

/// What the monitor saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct MonitorReport {
    pub peak_rss_kib: u64,
    pub peak_fds: usize,
    /// The server passed [`RSS_CAP_KIB`] and the monitor killed it.
    pub killed_at_cap: bool,
    /// When, after the monitor started.
    pub killed_after: Option<Duration>,
}

/// A running sampler thread; [`Monitor::stop`] ends it and returns what it saw.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    killed: Arc<AtomicBool>,
    thread: JoinHandle<MonitorReport>,
}

/// One `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Number of open file descriptors of a process.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The soft "Max open files" limit of a process, from `/proc/<pid>/limits`.
pub fn fd_limit(pid: u32) -> Option<String> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3).map(str::to_owned)
}

fn kill(pid: u32) {
    // The server is our own child: killed by its id, never by name.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

impl Monitor {
    pub fn start(pid: u32) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(AtomicBool::new(false));
        let (stop_flag, killed_flag) = (stop.clone(), killed.clone());
        let thread = std::thread::spawn(move || sample(pid, &stop_flag, &killed_flag));
        Monitor {
            stop,
            killed,
            thread,
        }
    }

    /// Whether the server has been killed for passing the cap.
    pub fn killed_at_cap(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    pub fn stop(self) -> MonitorReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn sample(pid: u32, stop: &AtomicBool, killed: &AtomicBool) -> MonitorReport {
    let mut report = MonitorReport::default();
    let started = std::time::Instant::now();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if let Some(rss) = status_kib(pid, "VmRSS") {
            report.peak_rss_kib = report.peak_rss_kib.max(rss);
            if rss > RSS_CAP_KIB && !report.killed_at_cap {
                kill(pid);
                report.killed_at_cap = true;
                report.killed_after = Some(started.elapsed());
                killed.store(true, Ordering::Relaxed);
            }
        }
        if n % FDS_EVERY == 0 {
            if let Some(fds) = open_fds(pid) {
                report.peak_fds = report.peak_fds.max(fds);
            }
        }
        n = n.wrapping_add(1);
        std::thread::sleep(SAMPLE_EVERY);
    }
    report
}
