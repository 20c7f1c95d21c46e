//! `cargo bench -p hil --bench covering`: size and generation time of the covering
//! arrays `covering.rs` builds, for the models PICT publishes pairwise sizes for and
//! for the project's own setting matrix, each array verified after it is built.
//!
//! Times are wall times of one generation on this machine; next to each is the time of
//! a baseline in the same run (verifying the array, i.e. enumerating every t-tuple
//! once), so that figures from different machines compare as ratios.

use std::path::PathBuf;
use std::time::Instant;

use hil_oracle::covering::{generate, verify, Model, Param};
use hil_oracle::matrix::Matrix;
use hil_oracle::model::DeviceFacts;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mixed(spec: &[(usize, usize)]) -> Model {
    let mut params = Vec::new();
    for &(values, count) in spec {
        for _ in 0..count {
            params.push(Param::new(format!("p{}", params.len()), values));
        }
    }
    Model::new(params)
}

/// Generates and verifies; prints one table row.
fn measure(name: &str, model: &Model, t: usize, published: Option<usize>) {
    let started = Instant::now();
    let rows = match generate(model, t, 1) {
        Ok(r) => r,
        Err(e) => {
            println!("| {name} | {t} | — | — | — | — | {e} |");
            return;
        }
    };
    let gen_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (missing, bad) = verify(model, t, &rows);
    let verify_s = started.elapsed().as_secs_f64();
    let ok = if missing.is_empty() && bad.is_empty() {
        "verified".to_string()
    } else {
        format!(
            "NOT COVERING: {} tuples missing, {} bad rows",
            missing.len(),
            bad.len()
        )
    };
    println!(
        "| {name} | {t} | {} | {} | {gen_s:.3} s | {:.1} | {ok} |",
        rows.len(),
        published.map_or("—".to_string(), |p| p.to_string()),
        gen_s / verify_s.max(1e-6),
    );
}

/// (name, (values, count) groups, PICT's published pairwise size).
type Published = (&'static str, &'static [(usize, usize)], usize);

fn main() {
    println!(
        "covering arrays (seed 1), generated then verified; PICT: its published pairwise size"
    );
    println!();
    println!("| model | t | rows | PICT | generation | generation / verification | check |");
    println!("|---|---|---|---|---|---|---|");
    // (name, (values, count) groups, PICT's published pairwise size)
    let published: [Published; 5] = [
        ("3^4", &[(3, 4)], 9),
        ("3^13", &[(3, 13)], 18),
        ("4^15 3^17 2^29", &[(4, 15), (3, 17), (2, 29)], 37),
        ("2^100", &[(2, 100)], 15),
        ("10^20", &[(10, 20)], 210),
    ];
    for (name, spec, pict) in published {
        measure(name, &mixed(spec), 2, Some(pict));
    }
    for (name, spec, _) in published {
        measure(name, &mixed(spec), 3, None);
    }
    let m = Matrix::build(
        &root().join("certs"),
        &root().join("scenarios"),
        &DeviceFacts::default(),
    )
    .expect("the project's model");
    let model = m.covering_model();
    let shape: Vec<usize> = model.params.iter().map(|p| p.values).collect();
    let name = format!("project ({} dimensions)", shape.len());
    for t in [2, 3] {
        measure(&name, &model, t, None);
    }
    println!();
    for t in [2, 3] {
        let started = Instant::now();
        match m.covering(t, 1) {
            Ok(rows) => println!(
                "the project's {t}-way cases (rows normalised, duplicates merged, plus one case per invalid value): {} in {:.3} s",
                rows.len(),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => println!("the project's {t}-way cases: {e}"),
        }
    }
    println!();
    println!(
        "the project's model: value counts per dimension {shape:?}; 4-way is not measured (see BENCHMARKS.md)"
    );
}
