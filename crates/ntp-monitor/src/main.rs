//! The `ntp-monitor` command; everything lives in the library.

fn main() -> std::process::ExitCode {
    ntp_monitor::main_with_args(std::env::args_os())
}
