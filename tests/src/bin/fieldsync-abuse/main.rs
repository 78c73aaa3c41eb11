//! `fieldsync-abuse`: runs each attack of the security review against a real release server
//! process on loopback and measures what it does to the server and to an honest phone.
//!
//! For every attack the bench starts a fresh `fieldsync-server-e2e serve --dev` with a fresh
//! data directory, enrols a **bystander** (an ordinary collector of commune 62.610.01) and lets
//! it sync once, builds the attack's payload, and then, for `--seconds`:
//!
//! - runs the attack (see [`attacks`] for what each one sends);
//! - keeps the bystander syncing in a loop: one small local edit, then a full sync (every
//!   exchange until nothing is left), timed. A sync that fails or takes longer than 30 s counts
//!   as a failure with a latency of 30 s;
//! - samples the server's resident memory (`VmRSS`, every 50 ms) and open file descriptors, and
//!   kills the server if it passes 4 GiB, so that the machine itself is never at risk.
//!
//! Afterwards it stops the attack (every socket is closed), checks that the server process is
//! alive and answers `GET /v1/health` with 200 within 5 s, reads `VmHWM`, kills the server and
//! prints one row. The rows are printed again as one Markdown table at the end.
//!
//! ```text
//! cargo build --release -p fieldsync-tests --bins
//! target/release/fieldsync-abuse --seconds 20
//! target/release/fieldsync-abuse --only enrol-flood --seconds 10
//! target/release/fieldsync-abuse --database postgres://fieldsync@127.0.0.1:5432/postgres --instances 2
//! ```
//!
//! With `--database` each attack's servers store in a fresh database of that PostgreSQL
//! cluster; with `--instances 2` two server processes share it: the attack is aimed at the
//! first (the one whose memory is watched), and the bystander's requests take turns between
//! them, as behind a load balancer.
//!
//! The server binary is `fieldsync-server-e2e` next to this one. Every network call has a
//! timeout and every attack is bounded in time, so the bench always ends.

mod attacks;
mod bystander;
mod flood;
mod harness;
mod monitor;
mod payloads;
mod raw;

use attacks::Attack;
use clap::Parser;
use harness::{Deployment, Row};
use std::time::Duration;

/// The error type of the bench: a message, for a human reading the table.
pub type BenchResult<T> = Result<T, String>;

/// `?`-friendly conversion of any displayable error into a message saying what failed.
pub trait Context<T> {
    fn context(self, what: &str) -> BenchResult<T>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> BenchResult<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

#[derive(Parser)]
#[command(
    about = "Runs the security review's attacks against a real fieldsync server and \
                   measures the server's memory, its survival and an honest phone's syncs"
)]
struct Args {
    /// Run only this attack (see --list).
    #[arg(long)]
    only: Option<String>,
    /// How long each attack runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// List the attacks and exit.
    #[arg(long)]
    list: bool,
    /// Store in fresh databases of this PostgreSQL cluster instead of SQLite files.
    #[arg(long)]
    database: Option<String>,
    /// Server processes on each attack's database (more than one needs `--database`).
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

fn selected(args: &Args) -> BenchResult<Vec<Attack>> {
    match &args.only {
        None => Ok(Attack::ALL.to_vec()),
        Some(name) => Attack::ALL
            .iter()
            .find(|a| a.name() == name)
            .map(|a| vec![*a])
            .ok_or_else(|| format!("unknown attack {name}; --list shows them")),
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("{}", Row::HEADER);
    println!("{}", Row::RULE);
    for row in rows {
        println!("{}", row.markdown());
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    if args.list {
        for attack in Attack::ALL {
            println!("{:22} {}", attack.name(), attack.description());
        }
        return Ok(());
    }
    let attacks = selected(&args)?;
    if args.instances > 1 && args.database.is_none() {
        return Err("several instances need --database postgres://...".into());
    }
    let deployment = Deployment {
        database: args.database.clone(),
        instances: args.instances.max(1),
    };
    let window = Duration::from_secs(args.seconds.max(1));
    println!(
        "fieldsync-abuse: {} attack(s), {} s each, {}, server {}",
        attacks.len(),
        window.as_secs(),
        deployment.describe(),
        fieldsync_tests::server::binary()
            .map_err(|e| e.to_string())?
            .display()
    );
    let mut rows = Vec::new();
    for attack in attacks {
        println!("\n== {}: {}", attack.name(), attack.description());
        let row = harness::run(attack, &deployment, window).await;
        println!("{}", row.summary());
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
}
