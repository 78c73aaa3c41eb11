//! The fieldsync server command line, built inside the test crate so that end-to-end tests and
//! `fieldsync-sim` always run the server of the current source tree.
//!
//! With `FIELDSYNC_E2E_MAX_OPEN_FILES=<n>` it first lowers its own open-file limit, soft and
//! hard, to `n`, as `prlimit --nofile=n:n` would: tests run the server under a small limit
//! without lowering their own.

fn main() -> std::process::ExitCode {
    if let Some(n) = std::env::var("FIELDSYNC_E2E_MAX_OPEN_FILES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        use rustix::process::{setrlimit, Resource, Rlimit};
        let limit = Rlimit {
            current: Some(n),
            maximum: Some(n),
        };
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            eprintln!("fieldsync-server-e2e: lowering the open-file limit to {n}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    fieldsync_server::cli::main()
}
