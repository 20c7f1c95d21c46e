//! The operations of SPEC §6 on a device's console, each typed through the profile's
//! template: `reset`, `get`, `apply`, user and notification addresses, a CA
//! certificate, the clock, the triggers, a job's end and its report. Values go out
//! in the device's words and come back in SPEC's; error classes and job states too.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::console::{
    Answer, Console, DriverError, Ended, JobEnd, JobReport, RecipientVerdict, Status,
    TriggerAnswer, Until,
};
use super::diagnose::{Mismatch, Trait};
use super::profile::TRIGGERS;
use hil_oracle::model::Key;

/// Parameters sent as they are, never quoted: already rendered (`pairs`), pasted
/// (`pem`), or written by the profile's own format (`time`, unless `[quote] time`).
const UNQUOTED: &[&str] = &["pairs", "pem"];

impl Console {
    /// Types the profile's template for `op` and reads its answer. Parameters named
    /// in `secret` are masked in the log; those in `raw` are sent without quoting.
    pub fn op(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
        secret: &[&str],
        raw: &[&str],
    ) -> Result<Answer, DriverError> {
        for (k, v) in params {
            if secret.contains(k) {
                self.add_secret(v);
            }
        }
        let masked: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| {
                if secret.contains(k) && !v.is_empty() {
                    (*k, "***")
                } else {
                    (*k, *v)
                }
            })
            .collect();
        let mut raw: Vec<&str> = raw.to_vec();
        raw.extend(UNQUOTED);
        if self.profile.quoting_of("time") == self.profile.quoting {
            raw.push("time");
        }
        self.run_template(op, params, &masked, &raw)
    }

    /// Runs each step of `op`'s template: sync on the prompt first; each step's
    /// lines sent (at once, or one by one each answered), then its answer read or
    /// its `expect` waited for. A refusal ends the operation; on a several-step
    /// template the profile's `on_error` is typed then, to leave nothing half done.
    fn run_template(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
        masked: &[(&str, &str)],
        raw: &[&str],
    ) -> Result<Answer, DriverError> {
        let Some(tpl) = self.profile.template(op).cloned() else {
            return Err(DriverError::Refused(format!(
                "profile {:?} has no template for {op:?}",
                self.profile.name
            )));
        };
        let trigger = TRIGGERS.contains(&op);
        let command = Duration::from_millis(self.profile.timeouts.command_ms);
        self.sync(op)?;
        let mut data = Vec::new();
        let steps = tpl.steps.len();
        let mut units_done = 0usize;
        for (i, step) in tpl.steps.iter().enumerate() {
            let lines = |ps: &[(&str, &str)]| -> Vec<String> {
                step.send.as_deref().map_or_else(Vec::new, |t| {
                    self.profile
                        .render_text(op, t, ps, raw)
                        .split('\n')
                        .map(str::to_string)
                        .collect()
                })
            };
            let (sent, shown) = (lines(params), lines(masked));
            let units: Vec<(Vec<String>, Vec<String>)> =
                if step.each_line(&self.profile.apply_separator) {
                    sent.into_iter()
                        .zip(shown)
                        .map(|(l, s)| (vec![l], vec![s]))
                        .collect()
                } else {
                    vec![(sent, shown)]
                };
            for (sent, shown) in units {
                units_done += 1;
                if step.reboot {
                    // Typed, then the device restarts: wait for it, log in again.
                    for (l, s) in sent.iter().zip(&shown) {
                        self.send(l, !step.raw, s)?;
                    }
                    self.after_reboot(op)?;
                    continue;
                }
                let until = Until {
                    op,
                    sent: shown.clone(),
                    expect: step.expect.as_ref(),
                    trigger: trigger && i + 1 == steps,
                    deadline: Instant::now()
                        + step.timeout_ms.map_or(command, Duration::from_millis),
                };
                let ended = if sent.is_empty() {
                    self.exchange(&[], &[], step.raw, &until)?
                } else {
                    self.exchange(&sent, &shown, step.raw, &until)?
                };
                match ended {
                    Ended::Expected(d) => data.extend(d),
                    Ended::Answer(a) => {
                        data.extend(a.data);
                        if let Status::Err { .. } = a.status {
                            if steps > 1 || units_done > 1 {
                                self.recover(op);
                            }
                            return Ok(Answer {
                                data,
                                status: a.status,
                            });
                        }
                    }
                }
            }
        }
        Ok(Answer {
            data,
            status: Status::Ok,
        })
    }

    /// After a refused step of a several-step operation: the profile's `on_error`
    /// (leave a configure mode, discard a candidate), whatever it answers.
    fn recover(&mut self, op: &str) {
        if self.profile.template("on_error").is_none() {
            return;
        }
        self.note(&format!("{op} was refused part way: typing on_error"));
        if let Err(e) = self.run_template("on_error", &[], &[], &[]) {
            self.note(&format!("on_error after {op}: {e}"));
        }
    }

    /// `op`, requiring success; a refusal becomes an error naming the command.
    pub fn op_ok(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
        secret: &[&str],
    ) -> Result<Answer, DriverError> {
        let a = self.op(op, params, secret, &[])?;
        match &a.status {
            Status::Ok => Ok(a),
            Status::Err { class, detail } => Err(DriverError::Refused(format!(
                "{op} was refused: {class} {detail}"
            ))),
        }
    }

    /// Imports a CA certificate (PEM) into the device's external store.
    pub fn import_cert(&mut self, pem: &str) -> Result<Answer, DriverError> {
        let pem = pem.trim_end().replace("\r\n", "\n");
        self.op("cert_import", &[("pem", &pem)], &[], &["pem"])
    }

    /// Reads one setting (a SPEC key), in SPEC's words.
    pub fn get(&mut self, key: Key) -> Result<String, DriverError> {
        let dk = self.profile.device_key(key).to_string();
        let a = self.op_ok("get", &[("key", &dk)], &[])?;
        let p = Arc::clone(&self.profile);
        for l in &a.data {
            if let Some(c) = p.value.captures(l) {
                if c.name("key")
                    .is_some_and(|m| m.as_str().eq_ignore_ascii_case(&dk))
                {
                    let v = c.name("value").map(|m| m.as_str()).unwrap_or("");
                    return Ok(p.spec_value(key, &p.unquote(v.trim_end())));
                }
            }
        }
        Err(DriverError::Profile(Mismatch {
            op: "get".into(),
            trait_: Trait::AnswerWords,
            field: "answers.value".into(),
            what: format!(
                "get {dk}: no line of {:?} matched answers.value /{}/ with key {dk:?}",
                a.data,
                p.value.as_str()
            ),
            fix: "make answers.value match the line that shows the value, with (?<key>) and (?<value>)"
                .into(),
        }))
    }

    /// Applies settings all at once (SPEC keys and values; the profile maps them).
    pub fn apply(
        &mut self,
        pairs: &[(Key, String)],
        secret_keys: &[Key],
    ) -> Result<Answer, DriverError> {
        let mut parts = Vec::new();
        let mut shown = Vec::new();
        for (k, v) in pairs {
            let dk = self.profile.device_key(*k).to_string();
            let dv = self.profile.device_value(*k, v);
            let pair = self.profile.render_pair(&dk, &dv);
            if secret_keys.contains(k) && !v.is_empty() {
                self.add_secret(v);
                shown.push(self.profile.render_pair(&dk, "***"));
            } else {
                shown.push(pair.clone());
            }
            parts.push(pair);
        }
        let sep = self.profile.apply_separator.clone();
        let (all, all_shown) = (parts.join(&sep), shown.join(&sep));
        self.run_template(
            "apply",
            &[("pairs", &all)],
            &[("pairs", &all_shown)],
            &["pairs"],
        )
    }

    /// Starts a job with the operation `op` and its parameters.
    pub fn trigger(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
    ) -> Result<TriggerAnswer, DriverError> {
        let a = self.op(op, params, &[], &[])?;
        match a.status {
            Status::Err { class, detail } => Ok(TriggerAnswer::Refused { class, detail }),
            Status::Ok => {
                for l in &a.data {
                    if let Some(id) = self
                        .profile
                        .job_started
                        .captures(l)
                        .and_then(|c| c.name("id"))
                        .and_then(|m| m.as_str().parse().ok())
                    {
                        return Ok(TriggerAnswer::Job(id));
                    }
                }
                Err(DriverError::Profile(Mismatch {
                    op: op.into(),
                    trait_: Trait::AnswerWords,
                    field: "answers.job_started".into(),
                    what: format!(
                        "{op} succeeded, but no line of {:?} matched answers.job_started /{}/",
                        a.data,
                        self.profile.job_started.as_str()
                    ),
                    fix: "make answers.job_started match the line naming the new job, with (?<id>)"
                        .into(),
                }))
            }
        }
    }

    /// The end of job `id` among the events kept aside, taken out of them.
    fn take_queued_end(&mut self, id: u64) -> Option<JobEnd> {
        let pos = self
            .events
            .iter()
            .position(|e| self.match_end(e, id).is_some())?;
        let e = self.events.remove(pos)?;
        self.match_end(&e, id)
    }

    fn match_end(&self, line: &str, id: u64) -> Option<JobEnd> {
        let p = &self.profile;
        let ours = |c: &regex::Captures| c.name("id").is_some_and(|m| m.as_str() == id.to_string());
        if let Some(c) = p.job_done.captures(line) {
            if ours(&c) {
                return Some(JobEnd::Done);
            }
        }
        if let Some(c) = p.job_failed.captures(line) {
            if ours(&c) {
                return Some(JobEnd::Failed {
                    class: c
                        .name("class")
                        .map(|m| p.spec_class(m.as_str()))
                        .unwrap_or_default(),
                    detail: c
                        .name("detail")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        None
    }

    /// Waits for the end of job `id`, for at most `limit`: its event, or, on a
    /// console without job events (or with `[events] poll_ms`), `job` asked until
    /// its state is done or failed.
    pub fn wait_job(&mut self, id: u64, limit: Duration) -> Result<JobEnd, DriverError> {
        if let Some(ms) = self.profile.poll_ms {
            return self.poll_job(id, limit, Duration::from_millis(ms));
        }
        self.await_job_event(id, limit)
    }

    /// Asks `job` every `every` until the job's state is done or failed.
    fn poll_job(
        &mut self,
        id: u64,
        limit: Duration,
        every: Duration,
    ) -> Result<JobEnd, DriverError> {
        let deadline = Instant::now() + limit;
        loop {
            // An event may come first: take it.
            if let Some(end) = self.take_queued_end(id) {
                return Ok(end);
            }
            let r = self.job_report(id)?;
            match r.state.as_str() {
                "done" => return Ok(JobEnd::Done),
                "failed" => {
                    return Ok(JobEnd::Failed {
                        class: r.class.unwrap_or_default(),
                        detail: r.detail.unwrap_or_default(),
                    })
                }
                "queued" | "running" => {}
                other => return Err(DriverError::Profile(Mismatch {
                    op: "job".into(),
                    trait_: Trait::AnswerWords,
                    field: "[states]".into(),
                    what: format!("job {id}'s state reads {other:?}, no job state of SPEC §6"),
                    fix: "map the device's state words in [states] (queued, running, done, failed)"
                        .into(),
                })),
            }
            if Instant::now() + every > deadline {
                return Err(DriverError::Timeout(format!(
                    "{}: job {id} did not end within {} ms (job_ms); its state is {}",
                    self.name,
                    limit.as_millis(),
                    r.state
                )));
            }
            std::thread::sleep(every);
        }
    }

    /// Waits for the event that ends job `id`, for at most `limit`.
    fn await_job_event(&mut self, id: u64, limit: Duration) -> Result<JobEnd, DriverError> {
        if let Some(end) = self.take_queued_end(id) {
            return Ok(end);
        }
        let deadline = Instant::now() + limit;
        // Lines seen meanwhile (the last few), for the message if none ends the job.
        let mut seen: VecDeque<String> = VecDeque::new();
        let events_at_start = self.events_pushed;
        loop {
            let before = self.events_pushed;
            if !self.pump(deadline, "the end of the job")? {
                if seen.is_empty() {
                    let events = self.events_pushed - events_at_start;
                    let said = if events == 0 {
                        "the device said nothing meanwhile".to_string()
                    } else {
                        format!("none of the {events} event line(s) the device printed meanwhile ended it")
                    };
                    return Err(DriverError::Timeout(format!(
                        "{}: job {id} did not end within {} ms (job_ms), and {said}",
                        self.name,
                        limit.as_millis()
                    )));
                }
                let said: Vec<String> = seen.iter().map(|l| self.redact(l)).collect();
                return Err(DriverError::Profile(Mismatch {
                    op: "job".into(),
                    trait_: Trait::AnswerWords,
                    field: "events.job_done / events.job_failed".into(),
                    what: format!(
                        "the device said {said:?} while job {id} ran, but no line matched events.job_done /{}/ or events.job_failed /{}/ within {} ms",
                        self.profile.job_done.as_str(),
                        self.profile.job_failed.as_str(),
                        limit.as_millis()
                    ),
                    fix: "make the events match the device's job end lines, with (?<id>) and (?<class>)".into(),
                }));
            }
            if self.events_pushed > before {
                if let Some(e) = self.events.back().cloned() {
                    if let Some(end) = self.match_end(&e, id) {
                        self.events.pop_back();
                        return Ok(end);
                    }
                }
            }
            for d in std::mem::take(&mut self.drained).lines {
                if let Some(end) = self.match_end(&d, id) {
                    return Ok(end);
                }
                if seen.len() >= 5 {
                    seen.pop_front();
                }
                seen.push_back(d);
            }
        }
    }

    /// Reads the device's report of job `id`. The state line may span several lines
    /// (`answers.job_state` is tried on each line, then on the lines joined by `\n`).
    pub fn job_report(&mut self, id: u64) -> Result<JobReport, DriverError> {
        let ids = id.to_string();
        let a = self.op_ok("job", &[("id", &ids)], &[])?;
        let p = Arc::clone(&self.profile);
        let report = groups_in(&p.job_state, &a.data).map(|g| JobReport {
            state: g.get("state").map(|s| p.spec_state(s)).unwrap_or_default(),
            class: g.get("class").map(|c| p.spec_class(c)),
            detail: g.get("detail").cloned(),
            recipients: Vec::new(),
        });
        let mut recipients = Vec::new();
        for l in &a.data {
            if p.job_state.is_match(l) {
                continue;
            }
            if let Some(c) = p.recipient.captures(l) {
                recipients.push(RecipientVerdict {
                    address: c
                        .name("address")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                    accepted: c
                        .name("verdict")
                        .is_some_and(|m| p.recipient_is_accepted(m.as_str())),
                    detail: c
                        .name("detail")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        let mut r = report.ok_or_else(|| {
            DriverError::Profile(Mismatch {
                op: "job".into(),
                trait_: Trait::AnswerWords,
                field: "answers.job_state".into(),
                what: format!(
                    "job {id}: no line of {:?} matched answers.job_state /{}/",
                    a.data,
                    p.job_state.as_str()
                ),
                fix:
                    "make answers.job_state match the job's state line, with (?<id>) and (?<state>)"
                        .into(),
            })
        })?;
        r.recipients = recipients;
        Ok(r)
    }

    /// Sets the device clock, written in the profile's clock format.
    pub fn clock_set(&mut self, t: OffsetDateTime) -> Result<Answer, DriverError> {
        let text = self
            .profile
            .clock
            .write(t)
            .map_err(|e| DriverError::Refused(format!("cannot write the time {t}: {e}")))?;
        self.op("clock_set", &[("time", &text)], &[], &[])
    }

    /// Reads the device clock (`clock_get` and `answers.clock` in the profile).
    pub fn clock_get(&mut self) -> Result<OffsetDateTime, DriverError> {
        let a = self.op_ok("clock_get", &[], &[])?;
        let p = Arc::clone(&self.profile);
        let Some(re) = &p.clock_answer else {
            return Err(DriverError::Refused(
                "the profile has no answers.clock to read the clock with".into(),
            ));
        };
        if let Some(time) = groups_in(re, &a.data).and_then(|g| g.get("time").cloned()) {
            let format = p.clock_read();
            return format.read(&time).map_err(|e| {
                DriverError::Profile(Mismatch {
                    op: "clock_get".into(),
                    trait_: Trait::ClockFormat,
                    field: "formats.clock_read".into(),
                    what: format!(
                        "the device's time {time:?} does not read as {}: {e}",
                        format.describe()
                    ),
                    fix: "give formats.clock (and formats.clock_read, when the device shows its time otherwise than it takes it) the way the device writes its time".into(),
                })
            });
        }
        Err(DriverError::Profile(Mismatch {
            op: "clock_get".into(),
            trait_: Trait::AnswerWords,
            field: "answers.clock".into(),
            what: format!(
                "no line of {:?} matched answers.clock /{}/",
                a.data,
                re.as_str()
            ),
            fix: "make answers.clock match the line with the time, with (?<time>)".into(),
        }))
    }
}

/// The named groups of `re` in the first line of `data` it matches or, when no one
/// line does, in the lines joined by `\n` (a pattern written across lines).
fn groups_in(
    re: &regex::Regex,
    data: &[String],
) -> Option<std::collections::BTreeMap<String, String>> {
    let joined = data.join("\n");
    let c = data
        .iter()
        .find_map(|l| re.captures(l))
        .or_else(|| re.captures(&joined))?;
    Some(
        re.capture_names()
            .flatten()
            .filter_map(|n| c.name(n).map(|m| (n.to_string(), m.as_str().to_string())))
            .collect(),
    )
}
