//! NTS benchmarks: filled in together with `nts_cookie::packet`.

fn main() {}
