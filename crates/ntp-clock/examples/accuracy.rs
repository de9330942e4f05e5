//! Prints the accuracy figures of docs/ACCURACY.md:
//! `cargo run --release -p ntp-clock --example accuracy`.

use ntp_clock::sim::{run, standard_scenarios};
use ntp_clock::{Algorithm, SystemConfig};

fn main() {
    for algorithm in [Algorithm::LeastSquares, Algorithm::PllFll] {
        println!("== {algorithm:?}");
        for (name, mut s) in standard_scenarios() {
            s.system = SystemConfig {
                discipline: ntp_clock::DisciplineConfig {
                    algorithm,
                    ..s.system.discipline
                },
                ..s.system
            };
            let start = std::time::Instant::now();
            let r = run(&s);
            let states: Vec<String> = r
                .sources
                .iter()
                .map(|x| {
                    format!(
                        "{}={:?}(falseticker {}/{} updates)",
                        x.name, x.final_state, x.falseticker_updates, x.updates
                    )
                })
                .collect();
            println!(
                "{name:13} seed {} | {} | final {:?} | {} | {:.0} ms",
                s.seed,
                r.summary(),
                r.final_sync,
                states.join(" "),
                start.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}
