//! Prints a trace of one scenario: `cargo run --release -p ntp-clock --example trace -- [pll]`.

use ntp_clock::sim::{ClockModel, PathModel, Scenario, ServerModel, run};
use ntp_clock::{Algorithm, DisciplineConfig, SystemConfig};

fn main() {
    let pll = std::env::args().any(|a| a == "pll");
    let algorithm = if pll {
        Algorithm::PllFll
    } else {
        Algorithm::LeastSquares
    };
    let mut s = Scenario {
        clock: ClockModel {
            initial_offset: 0.5,
            frequency_ppm: 30.0,
            ..ClockModel::default()
        },
        trace_every: Some(300.0),
        ..Scenario::new(1)
    }
    .server(ServerModel::honest("a", 10e-6), PathModel::lan())
    .server(ServerModel::honest("b", -15e-6), PathModel::lan())
    .server(ServerModel::honest("c", 5e-6), PathModel::lan());
    s.system = SystemConfig {
        discipline: DisciplineConfig {
            algorithm,
            ..DisciplineConfig::default()
        },
        ..SystemConfig::default()
    };
    let r = run(&s);
    for p in &r.trace {
        println!(
            "{:6.0} s  err {:+10.1} µs  freq {:+8.3} ppm  poll {}  sync {}",
            p.time,
            p.error * 1e6,
            p.frequency_error_ppm,
            p.poll,
            p.synchronized
        );
    }
    println!("{}", r.summary());
}
