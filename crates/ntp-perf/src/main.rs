//! The `ntp-perf` command; everything is in the library.

fn main() -> std::process::ExitCode {
    ntp_perf::cli::main()
}
