//! `fieldsync-server`: see `fieldsync-server --help`.

fn main() -> std::process::ExitCode {
    fieldsync_server::cli::main()
}
