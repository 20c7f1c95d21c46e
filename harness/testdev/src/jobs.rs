//! The device's job numbers: counted since the process started, across reboots
//! (`--crash-at-job N` counts them), each mapped to the engine's number of the same
//! job while that engine runs. A reboot forgets the old engine's jobs.

use std::collections::BTreeMap;

/// Job records kept for `show job` (the engine keeps 1000).
const KEEP: usize = 2000;

#[derive(Debug, Default)]
pub struct JobBook {
    counter: u64,
    engine_of: BTreeMap<u64, u64>,
    dev_of: BTreeMap<u64, u64>,
}

impl JobBook {
    /// A job the engine numbered `engine`: its device number.
    pub fn add(&mut self, engine: u64) -> u64 {
        self.counter += 1;
        self.engine_of.insert(self.counter, engine);
        self.dev_of.insert(engine, self.counter);
        while self.engine_of.len() > KEEP {
            if let Some((_, e)) = self.engine_of.pop_first() {
                self.dev_of.remove(&e);
            }
        }
        self.counter
    }

    /// The engine's number of device job `dev`, if the running engine has it.
    pub fn engine_of(&self, dev: u64) -> Option<u64> {
        self.engine_of.get(&dev).copied()
    }

    /// The device number of the running engine's job `engine`.
    pub fn dev_of(&self, engine: u64) -> Option<u64> {
        self.dev_of.get(&engine).copied()
    }

    /// A reboot: the old engine's jobs are gone; the counter goes on.
    pub fn forget(&mut self) {
        self.engine_of.clear();
        self.dev_of.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_go_on_across_a_reboot() {
        let mut b = JobBook::default();
        assert_eq!(b.add(7), 1);
        assert_eq!(b.add(8), 2);
        assert_eq!(b.engine_of(2), Some(8));
        assert_eq!(b.dev_of(7), Some(1));
        b.forget();
        assert_eq!(b.engine_of(1), None);
        assert_eq!(b.add(1), 3);
        assert_eq!(b.dev_of(1), Some(3));
    }
}
