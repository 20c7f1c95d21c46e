//! Property-based fuzzing of configurations (`hil fuzz`, and the tests): random rows of
//! the setting matrix — every dimension at once, valid values only — run on a device
//! and compared with the oracle. The first failure is shrunk by proptest towards the
//! base values, so what is left is a minimal combination of non-default values; its
//! case id reruns it with `hil run --case ID`.
//!
//! Seeded: the same seed, matrix and device give the same cases in the same order.

use std::cell::RefCell;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::pool::CaseRunner;
use hil_oracle::matrix::{Matrix, Row};

/// A failure and its shrunk form.
#[derive(Debug, Clone)]
pub struct Found {
    /// The shrunk row's case id (`fuzz/dim=value,…`), for `hil run --case`.
    pub id: String,
    /// Its non-base values.
    pub non_default: Vec<(String, String)>,
    /// What differed, on the shrunk case.
    pub mismatches: Vec<String>,
    /// The cases run, shrinking included.
    pub runs: u32,
}

/// How a fuzz run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every case matched the oracle.
    Passed {
        cases: u32,
        harness_errors: u32,
    },
    Failed(Found),
}

/// Why fuzzing stopped without a verdict: proptest gave up (too many harness errors,
/// which are rejections, not failures).
#[derive(Debug, Clone, thiserror::Error)]
#[error("fuzzing gave up: {why} ({harness_errors} harness errors in {runs} cases)")]
pub struct GaveUp {
    /// proptest's reason.
    pub why: String,
    pub harness_errors: u32,
    pub runs: u32,
}

/// The strategy: for each dimension an index into its valid values.
fn strategy(m: &Matrix) -> impl Strategy<Value = Vec<usize>> {
    (0..m.dims.len())
        .map(|i| 0..m.valid_values(i).len())
        .collect::<Vec<_>>()
}

/// Turns a strategy value into a normalised `fuzz` row.
pub fn row_of(m: &Matrix, picks: &[usize]) -> Row {
    let mut values: Vec<usize> = picks
        .iter()
        .enumerate()
        .map(|(i, j)| m.valid_values(i).get(*j).copied().unwrap_or(0))
        .collect();
    m.normalise(&mut values);
    Row {
        section: "fuzz".into(),
        values,
    }
}

/// Runs `cases` random cases on `runner` (seeded by `seed`); on the first failure,
/// shrinks it. `progress` gets each case's id and verdict as it ends.
pub fn fuzz(
    m: &Matrix,
    runner: &mut dyn CaseRunner,
    cases: u32,
    seed: u64,
    progress: &mut dyn FnMut(&str, &str),
) -> Result<Outcome, GaveUp> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        // Harness errors are rejections, not failures; a flaky bench must not loop.
        max_global_rejects: cases.max(16),
        ..Config::default()
    };
    let mut tr = TestRunner::new_with_rng(config, rng);
    let runner = RefCell::new(runner);
    let progress = RefCell::new(progress);
    let runs = RefCell::new(0u32);
    let errors = RefCell::new(0u32);
    let last_fail: RefCell<Option<(String, Vec<String>)>> = RefCell::new(None);
    let result = tr.run(&strategy(m), |picks| {
        let row = row_of(m, &picks);
        let case = m.case(&row);
        let r = runner.borrow_mut().run_case(&case);
        *runs.borrow_mut() += 1;
        let verdict = match (&r.harness_error, r.passed) {
            (Some(_), _) => "harness error",
            (None, true) => "pass",
            (None, false) => "FAIL",
        };
        (progress.borrow_mut())(&case.id, verdict);
        if let Some(e) = r.harness_error {
            *errors.borrow_mut() += 1;
            return Err(TestCaseError::reject(e));
        }
        if r.passed {
            Ok(())
        } else {
            *last_fail.borrow_mut() = Some((case.id.clone(), crate::outcome::texts(&r.mismatches)));
            Err(TestCaseError::fail(
                crate::outcome::texts(&r.mismatches).join("; "),
            ))
        }
    });
    let runs = runs.into_inner();
    match result {
        Ok(()) => Ok(Outcome::Passed {
            cases: runs,
            harness_errors: errors.into_inner(),
        }),
        Err(TestError::Fail(_, picks)) => {
            // proptest shrinks one dimension after another; a dimension it could not
            // shrink early may be shrinkable once later ones are: go on greedily, each
            // non-base value back to base while the failure stays (1-minimal).
            let mut row = row_of(m, &picks);
            let mut mismatches = last_fail
                .borrow()
                .as_ref()
                .filter(|(i, _)| *i == m.id(&row))
                .map(|(_, mm)| mm.clone())
                .unwrap_or_default();
            let mut runs = runs;
            let runner = runner.into_inner();
            let progress = progress.into_inner();
            loop {
                let mut shrunk = false;
                for i in 0..m.dims.len() {
                    if row.values[i] == 0 {
                        continue;
                    }
                    let mut values = row.values.clone();
                    values[i] = 0;
                    m.normalise(&mut values);
                    let candidate = Row {
                        section: "fuzz".into(),
                        values,
                    };
                    let case = m.case(&candidate);
                    let r = runner.run_case(&case);
                    runs += 1;
                    let fails = r.harness_error.is_none() && !r.passed;
                    progress(&case.id, if fails { "FAIL" } else { "pass" });
                    if fails {
                        row = candidate;
                        mismatches = crate::outcome::texts(&r.mismatches);
                        shrunk = true;
                    }
                }
                if !shrunk {
                    break;
                }
            }
            let id = m.id(&row);
            let non_default = m
                .dims
                .iter()
                .zip(&row.values)
                .filter(|(_, j)| **j != 0)
                .map(|(d, j)| (d.name.to_string(), d.values[*j].name.clone()))
                .collect();
            Ok(Outcome::Failed(Found {
                id,
                non_default,
                mismatches,
                runs,
            }))
        }
        Err(TestError::Abort(why)) => Err(GaveUp {
            why: why.to_string(),
            harness_errors: errors.into_inner(),
            runs,
        }),
    }
}
