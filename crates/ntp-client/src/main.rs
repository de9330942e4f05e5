//! The `ntp-client` command; everything lives in the library.

fn main() -> std::process::ExitCode {
    ntp_client::main_with_args(std::env::args_os())
}
