//! POP before SMTP (SPEC §3.6) on the simulated device, against the fake POP3 and SMTP
//! servers over real sockets: each `pop.tls` mode × USER/PASS and APOP, the wait
//! before SMTP, and each POP failure making no SMTP connection.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use hil::device::{JobEnd, TriggerAnswer};
use hil_mail::scenario::Scenario;
use hil_mail::serve;
use hil_mail::smtp::ListenerKind;
use rstest::rstest;

/// Device time runs 20 times faster: a 5 s wait is 250 ms.
const SCALE: f64 = 20.0;

fn scenario(pop_listener: &str, pop_extra: &str) -> Scenario {
    let text = format!(
        r#"
[smtp]
policy = {{ pop_before_smtp_window_s = 60 }}
[pop3]
accounts = [{{ user = "printer", password = "pop-Pass-1" }}]
{pop_extra}
[[pop3.listeners]]
kind = "{pop_listener}"
cert = "valid"
[[check]]
steps = [{{ expect = "220" }}]
"#
    );
    Scenario::parse(Path::new("pop.toml"), &text).expect("scenario")
}

/// One scan with POP before SMTP set by `settings`; answers the end, the wall time, and
/// the SMTP and POP3 connections the servers saw.
fn run(scn: &Scenario, settings: &[(&str, &str)]) -> (JobEnd, Duration, usize, usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs");
    let run = rt
        .block_on(serve::start(
            scn,
            &hil_mail::netaddr::BindAddr::loopback(),
            &certs,
            SCALE,
        ))
        .expect("servers");
    let smtp_port = run.smtp_endpoints()[0].1.port().to_string();
    let (pop_kind, pop_addr) = run.pop3_endpoints()[0];
    let pop_port = pop_addr.port().to_string();
    let (_sim, mut con) = common::sim(&[]);
    let port_key = if pop_kind == ListenerKind::Tls {
        "pop.ssl_port"
    } else {
        "pop.port"
    };
    let mut pairs: Vec<(String, String)> = vec![
        ("smtp.server".into(), "127.0.0.1".into()),
        ("smtp.port".into(), smtp_port),
        ("smtp.timeout".into(), "30".into()),
        ("admin.address".into(), "admin@hil.test".into()),
        ("device.address".into(), "mfp@hil.test".into()),
        ("pop_before_smtp.enabled".into(), "on".into()),
        ("pop_before_smtp.wait".into(), "5".into()),
        ("pop.server".into(), "127.0.0.1".into()),
        (port_key.into(), pop_port),
        ("pop.user".into(), "printer".into()),
        ("pop.password".into(), "pop-Pass-1".into()),
    ];
    pairs.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let a = con
        .apply(&common::keyed(&pairs), &common::keys(&["pop.password"]))
        .expect("apply");
    assert_eq!(a.status, hil::device::Status::Ok, "{pairs:?}");
    let t0 = Instant::now();
    let TriggerAnswer::Job(id) = con
        .trigger("scan", &[("to", "a@hil.test"), ("size_kb", "1")])
        .expect("trigger")
    else {
        panic!("refused")
    };
    let end = con.wait_job(id, Duration::from_secs(20)).expect("job end");
    let wall = t0.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    let smtp = run
        .smtp
        .as_ref()
        .map(|s| s.take().connections.len())
        .unwrap_or(0);
    let pop = run.pop3.as_ref().map(|p| p.take().len()).unwrap_or(0);
    let log: String = con.take_log().iter().map(|l| l.text.clone()).collect();
    assert!(
        !log.contains("pop-Pass-1"),
        "the POP password in the console log"
    );
    (end, wall, smtp, pop)
}

#[rstest]
fn each_pop_tls_mode_and_login(
    #[values(("none", "plain"), ("pop3s", "tls"), ("stls", "starttls"))] tls: (&str, &str),
    #[values("off", "on")] apop: &str,
) {
    let scn = scenario(tls.1, "");
    let (end, wall, smtp, pop) = run(&scn, &[("pop.tls", tls.0), ("pop.apop", apop)]);
    assert_eq!(end, JobEnd::Done, "pop.tls={} apop={apop}", tls.0);
    assert_eq!((smtp, pop), (1, 1));
    // The device waited pop_before_smtp.wait (5 s device time) before SMTP.
    assert!(wall >= Duration::from_millis(240), "{wall:?}");
}

#[rstest]
#[case::wrong_password(&[("pop.password", "wrong")], "", "pop_auth")]
#[case::apop_refused(&[("pop.apop", "on")], "refuse_apop = true", "pop_auth")]
#[case::hang_at_pass(&[], "[[pop3.faults]]\nstep = \"pass\"\naction = \"hang\"", "timeout")]
#[case::no_pop_server(&[("pop.port", "1")], "", "connect")]
fn a_pop_failure_makes_no_smtp_connection(
    #[case] settings: &[(&str, &str)],
    #[case] extra: &str,
    #[case] want: &str,
) {
    let scn = scenario("plain", extra);
    let (end, _, smtp, _) = run(&scn, settings);
    match end {
        JobEnd::Failed { class, detail } => {
            assert_eq!(class, want, "{detail}");
            assert!(
                !detail.contains("pop-Pass-1") && !detail.contains("wrong"),
                "{detail}"
            );
        }
        JobEnd::Done => panic!("delivered after a failed POP login"),
    }
    assert_eq!(smtp, 0, "an SMTP connection after a failed POP login");
}

#[test]
fn without_pop_before_smtp_the_relay_is_denied() {
    let scn = scenario("plain", "");
    let (end, _, _, pop) = run(&scn, &[("pop_before_smtp.enabled", "off")]);
    match end {
        JobEnd::Failed { class, detail } => {
            assert_eq!(class, "rejected");
            assert!(detail.contains("554"), "{detail}");
        }
        JobEnd::Done => panic!("relayed without a POP login"),
    }
    assert_eq!(pop, 0);
}
