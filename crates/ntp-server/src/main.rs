//! The `ntp-server` command; everything lives in the library.

fn main() -> std::process::ExitCode {
    ntp_server::main_with_args(std::env::args_os())
}
