//! The console traits a test device shows, each switched on its own, so that a test
//! can build a device that lacks exactly one of them (README "Flags").

/// The credentials the console asks for (`--login USER:PASSWORD`).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl Login {
    /// The router style's default login.
    pub fn router_default() -> Login {
        Login {
            user: "admin".into(),
            password: "admin123".into(),
        }
    }

    /// Reads `USER:PASSWORD` (the user without spaces or `:`, both non-empty printable).
    pub fn parse(spec: &str) -> Result<Login, String> {
        let (user, password) = spec
            .split_once(':')
            .ok_or("--login: expected USER:PASSWORD")?;
        let printable = |s: &str| !s.is_empty() && s.chars().all(|c| (' '..='~').contains(&c));
        if !printable(user) || user.contains(' ') {
            return Err("--login: the user must be printable ASCII without spaces".into());
        }
        if !printable(password) {
            return Err("--login: the password must be printable ASCII".into());
        }
        Ok(Login {
            user: user.into(),
            password: password.into(),
        })
    }
}

/// Which traits the console shows (all off: the plain console).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traits {
    /// 1. A login before anything else.
    pub login: Option<Login>,
    /// 2. Every character typed is echoed, line ends as CR LF.
    pub echo: bool,
    /// 3. Prompts, errors and events in SGR colours; erase-line redraws.
    pub ansi: bool,
    /// 4. Exec and configure prompts; settings staged and applied at `commit`.
    pub config_mode: bool,
    /// 5. The device's own names and words (`words.rs`).
    pub words: bool,
    /// 6. Refusals and job details over several lines.
    pub multiline: bool,
    /// 7. Quoting per parameter (`quoting.rs`).
    pub quoting: bool,
    /// 8. A trigger's answer is one status line `Job N queued`.
    pub job_status: bool,
    /// 9. No OK word: a command with nothing to say answers only the prompt.
    pub prompt_only: bool,
    /// 10. Factory reset and certificate import ask for confirmation.
    pub confirm: bool,
    /// 11. The clock in Cisco's form.
    pub clock: bool,
    /// 12. Listings longer than this many lines stop at ` --More-- `.
    pub paging: Option<usize>,
    /// 13. Crash and reboot when this job (counted since the process started) starts.
    pub crash_at: Option<u64>,
    /// 14. Hang until SIGUSR1 when this job starts.
    pub hang_at: Option<u64>,
    /// 15. Flood the console when a job starts.
    pub flood: Option<Flood>,
}

/// What a flooding console prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FloodKind {
    Events,
    Lines,
    Binary,
}

/// A flood of the console when job `at` starts: `bytes` of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flood {
    pub at: u64,
    pub bytes: u64,
    pub kind: FloodKind,
}

/// The router style's page length (an IOS terminal's 24 lines).
pub const ROUTER_PAGE: usize = 24;

impl Traits {
    /// `--style router`: traits 1 to 12 (crash and hang need a job number of their own).
    pub fn router() -> Traits {
        Traits {
            login: Some(Login::router_default()),
            echo: true,
            ansi: true,
            config_mode: true,
            words: true,
            multiline: true,
            quoting: true,
            job_status: true,
            prompt_only: true,
            confirm: true,
            clock: true,
            paging: Some(ROUTER_PAGE),
            crash_at: None,
            hang_at: None,
            flood: None,
        }
    }

    /// Whether the console prints a prompt (with configure mode or prompt-only
    /// answers; the plain console has none).
    pub fn prompts(&self) -> bool {
        self.config_mode || self.prompt_only
    }
}
