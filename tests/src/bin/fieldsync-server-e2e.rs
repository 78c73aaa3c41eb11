//! The fieldsync server command line, built inside the test crate so that end-to-end tests and
//! `fieldsync-sim` always run the server of the current source tree.

fn main() -> std::process::ExitCode {
    fieldsync_server::cli::main()
}
