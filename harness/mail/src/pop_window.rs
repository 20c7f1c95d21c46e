//! The POP-before-SMTP relay window: the POP3 server records each login (address,
//! user, time); the SMTP server asks whether an address logged in recently enough.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One recorded POP3 login.
#[derive(Debug, Clone, Serialize)]
pub struct Login {
    pub address: IpAddr,
    pub user: String,
    pub method: String,
    #[serde(skip)]
    pub at: Instant,
}

/// Logins shared between the POP3 and SMTP servers of one scenario.
#[derive(Debug)]
pub struct PopLogins {
    logins: Mutex<Vec<Login>>,
    time_scale: f64,
}

/// Most logins remembered; older ones are forgotten first.
const MAX_LOGINS: usize = 10_000;

impl PopLogins {
    /// `time_scale`: device time runs this many times faster than wall time.
    pub fn new(time_scale: f64) -> PopLogins {
        PopLogins {
            logins: Mutex::new(Vec::new()),
            time_scale: time_scale.max(1e-6),
        }
    }

    /// Forgets every login (a new case starts with no POP history).
    pub fn clear(&self) {
        self.logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn record(&self, address: IpAddr, user: &str, method: &str) {
        let mut l = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() >= MAX_LOGINS {
            l.remove(0);
        }
        l.push(Login {
            address,
            user: user.to_string(),
            method: method.to_string(),
            at: Instant::now(),
        });
    }

    /// Whether `address` logged in within the last `window_s` device seconds.
    pub fn within(&self, address: IpAddr, window_s: u64) -> bool {
        let window = Duration::from_secs_f64(window_s as f64 / self.time_scale);
        let l = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        l.iter()
            .rev()
            .any(|x| x.address == address && x.at.elapsed() <= window)
    }

    /// Every login recorded so far.
    pub fn all(&self) -> Vec<Login> {
        self.logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_by_address() {
        let p = PopLogins::new(1.0);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(!p.within(a, 60));
        p.record(a, "u", "APOP");
        assert!(p.within(a, 60));
        assert!(!p.within(b, 60));
        assert!(!p.within(a, 0) || p.all()[0].at.elapsed().is_zero());
    }
}
