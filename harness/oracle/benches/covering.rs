//! `cargo bench -p hil-oracle --bench covering`: size and generation time of the
//! covering arrays `covering.rs` builds, beside Microsoft PICT's on the same models in
//! the same run: the models PICT's paper publishes (3^4, 3^13, 4^15 3^17 2^29, 2^100,
//! 10^20) and the project's own setting matrix, at t = 2 and 3; then 4-way on the
//! project's model (ours only). Every array printed, ours and PICT's, is checked with
//! `covering::verify` (every allowed t-tuple covered, no forbidden row).
//!
//! PICT runs through PyPI's pypict in bench/.venv/pict (`bench/pict.sh` installs it;
//! `PICT_PYTHON` names another interpreter that has pypict). Without it, PICT's columns
//! say "PICT not installed". Its time is its own run, taken inside Python
//! (`benches/pict.py`), so Python's start-up is not counted against it.
//!
//! Arguments (after `--`): words that pick models by name (e.g. `2^100 project`),
//! `--t N` for one strength, `--seed N` for ours (1 by default), `--no-pict`, `--no-4way`.

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// "verified", or what is wrong with the array.
fn check(model: &Model, t: usize, rows: &[Vec<usize>]) -> String {
    let (missing, bad) = verify(model, t, rows);
    if missing.is_empty() && bad.is_empty() {
        "verified".to_string()
    } else {
        format!(
            "NOT COVERING: {} tuples missing, {} bad rows",
            missing.len(),
            bad.len()
        )
    }
}

/// The model in PICT's syntax: parameters p0.. with values 0..n, each forbidden
/// combination as a constraint.
fn pict_model(model: &Model) -> String {
    let mut s = String::new();
    for (i, p) in model.params.iter().enumerate() {
        let values: Vec<String> = (0..p.values).map(|v| v.to_string()).collect();
        s += &format!("p{i}: {}\n", values.join(", "));
    }
    if !model.forbidden.is_empty() {
        s += "\n";
    }
    for f in &model.forbidden {
        let cond = |&(p, v): &(usize, usize)| format!("[p{p}] = {v}");
        let (last, first) = f.0.split_last().expect("non-empty combination");
        let (lp, lv) = *last;
        if first.is_empty() {
            s += &format!("[p{lp}] <> {lv};\n");
        } else {
            let ifs: Vec<String> = first.iter().map(cond).collect();
            s += &format!("IF {} THEN [p{lp}] <> {lv};\n", ifs.join(" AND "));
        }
    }
    s
}

/// The Python that has pypict, if any.
fn pict_python() -> Option<PathBuf> {
    let py = match std::env::var_os("PICT_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => root().join("bench/.venv/pict/bin/python"),
    };
    let ok = Command::new(&py)
        .args(["-c", "import pypict.capi"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

/// PICT's rows and its own time, or why there are none.
fn run_pict(
    py: &Path,
    model: &Model,
    t: usize,
    work: &Path,
) -> Result<(Vec<Vec<usize>>, f64), String> {
    let file = work.join(format!("model-{}-{t}.txt", std::process::id()));
    std::fs::write(&file, pict_model(model)).map_err(|e| e.to_string())?;
    let script = root().join("harness/oracle/benches/pict.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(&file)
        .arg(t.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        return Err(format!(
            "PICT failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let secs: f64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("PICT printed no time")?;
    let rows = lines
        .map(|l| {
            l.split('\t')
                .map(|v| v.trim().parse::<usize>().map_err(|e| e.to_string()))
                .collect::<Result<Vec<usize>, String>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, secs))
}

struct Args {
    names: Vec<String>,
    strengths: Vec<usize>,
    seed: u64,
    pict: bool,
    four: bool,
}

fn args() -> Args {
    let mut a = Args {
        names: Vec::new(),
        strengths: vec![2, 3],
        seed: 1,
        pict: true,
        four: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bench" => {}
            "--no-pict" => a.pict = false,
            "--no-4way" => a.four = false,
            "--seed" => a.seed = it.next().and_then(|s| s.parse().ok()).expect("--seed N"),
            "--t" => {
                let t = it.next().and_then(|t| t.parse().ok()).expect("--t N");
                a.strengths = vec![t];
            }
            _ => a.names.push(arg),
        }
    }
    a
}

/// One table row: ours, then PICT's, on one model at strength t.
fn measure(name: &str, model: &Model, t: usize, seed: u64, pict: Option<&Path>, work: &Path) {
    let started = Instant::now();
    let (ours, ours_s, ours_check) = match generate(model, t, seed) {
        Ok(rows) => {
            let s = started.elapsed().as_secs_f64();
            let c = check(model, t, &rows);
            (rows.len().to_string(), format!("{s:.4}"), c)
        }
        Err(e) => ("—".into(), "—".into(), e.to_string()),
    };
    let (p_rows, p_s, p_check) = match pict {
        None => (
            "PICT not installed".to_string(),
            "PICT not installed".to_string(),
            "—".to_string(),
        ),
        Some(py) => match run_pict(py, model, t, work) {
            Ok((rows, s)) => (
                rows.len().to_string(),
                format!("{s:.4}"),
                check(model, t, &rows),
            ),
            Err(e) => ("—".into(), "—".into(), e),
        },
    };
    println!("| {name} | {t} | {ours} | {ours_s} | {p_rows} | {p_s} | {ours_check} / {p_check} |");
}

fn main() {
    let a = args();
    let pict = if a.pict { pict_python() } else { None };
    let work = std::env::temp_dir();
    let m = Matrix::build(
        &root().join("certs"),
        &root().join("scenarios"),
        &DeviceFacts::default(),
    )
    .expect("the project's model");
    let project = m.covering_model();
    let shape: Vec<usize> = project.params.iter().map(|p| p.values).collect();
    let project_name = format!("project ({} dimensions)", shape.len());
    let published: [(&str, &[(usize, usize)]); 5] = [
        ("3^4", &[(3, 4)]),
        ("3^13", &[(3, 13)]),
        ("4^15 3^17 2^29", &[(4, 15), (3, 17), (2, 29)]),
        ("2^100", &[(2, 100)]),
        ("10^20", &[(10, 20)]),
    ];
    let mut models: Vec<(String, Model)> = published
        .iter()
        .map(|(name, spec)| (name.to_string(), mixed(spec)))
        .collect();
    models.push((project_name.clone(), project.clone()));
    let picked =
        |name: &str| a.names.is_empty() || a.names.iter().any(|w| name.contains(w.as_str()));
    println!(
        "covering arrays: ours (`covering::generate`, seed {}) beside PICT (pypict, default run), each verified",
        a.seed
    );
    println!();
    println!("| model | t | ours: rows | ours: s | PICT: rows | PICT: s | check (ours / PICT) |");
    println!("|---|---|---|---|---|---|---|");
    for &t in &a.strengths {
        for (name, model) in models.iter().filter(|(n, _)| picked(n)) {
            measure(name, model, t, a.seed, pict.as_deref(), &work);
        }
    }
    if a.four && picked(&project_name) {
        let started = Instant::now();
        match generate(&project, 4, a.seed) {
            Ok(rows) => {
                let gen_s = started.elapsed().as_secs_f64();
                let started = Instant::now();
                let c = check(&project, 4, &rows);
                println!(
                    "| {project_name} | 4 | {} | {gen_s:.3} | not run | not run | {c} (verification {:.1} s) |",
                    rows.len(),
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => println!("| {project_name} | 4 | — | — | not run | not run | {e} |"),
        }
    }
    println!();
    if picked(&project_name) {
        for &t in &a.strengths {
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
        println!("the project's model: value counts per dimension {shape:?}");
    }
}
