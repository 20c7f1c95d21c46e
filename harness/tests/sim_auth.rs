//! The simulated device's AUTH (SPEC §3.7) against the fake server over real sockets:
//! each mechanism set × each server offer, the preference order, credentials from the
//! settings or the job's user, realms, failures, and AUTH off.

mod common;

use std::time::Duration;

use hil::device::{JobEnd, TriggerAnswer};
use hil_mail::sasl::{Account, Mechanism};
use hil_mail::smtp::{Policy, SmtpConfig};
use hil_mail::smtp_server::{Observations, SmtpServer};
use rstest::rstest;

fn account(user: &str, password: &str, realm: Option<&str>) -> Account {
    Account {
        user: user.into(),
        password: password.into(),
        realm: realm.map(str::to_string),
        token: Some("ya29.good-token".into()),
    }
}

fn offers(names: &[&str]) -> Vec<Mechanism> {
    names
        .iter()
        .filter_map(|n| Mechanism::from_name(n))
        .collect()
}

/// One scan (as `user` when given) with `settings`, against `config`.
fn run(
    settings: &[(&str, &str)],
    config: SmtpConfig,
    variant: Option<&str>,
    user: Option<&str>,
) -> (JobEnd, Observations) {
    let mut extra = Vec::new();
    if let Some(v) = variant {
        extra.extend(["--variant", v]);
    }
    let (_sim, mut con) = common::sim(&extra);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(SmtpServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            config,
        ))
        .expect("server");
    let port = server.addr().port().to_string();
    let mut pairs: Vec<(String, String)> = vec![
        ("smtp.server".into(), "127.0.0.1".into()),
        ("smtp.port".into(), port),
        ("admin.address".into(), "admin@hil.test".into()),
        ("device.address".into(), "mfp@hil.test".into()),
        ("smtp.auth.user".into(), "printer".into()),
        ("smtp.auth.password".into(), "s3cret-Pass".into()),
    ];
    pairs.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let a = con
        .apply(
            &common::keyed(&pairs),
            &common::keys(&["smtp.auth.password", "smtp.auth.token"]),
        )
        .expect("apply");
    assert_eq!(a.status, hil::device::Status::Ok, "{pairs:?}");
    con.op_ok(
        "user_add",
        &[
            ("name", "taro"),
            ("password", "taro-pw-1"),
            ("address", "taro@hil.test"),
        ],
        &["password"],
    )
    .expect("user add");
    let trig = match user {
        Some(u) => con.trigger(
            "scan_as_user",
            &[("to", "a@hil.test"), ("size_kb", "1"), ("user", u)],
        ),
        None => con.trigger("scan", &[("to", "a@hil.test"), ("size_kb", "1")]),
    };
    let TriggerAnswer::Job(id) = trig.expect("trigger") else {
        panic!("refused")
    };
    let end = con.wait_job(id, Duration::from_secs(20)).expect("job end");
    assert!(server.wait_idle(Duration::from_secs(5)));
    let obs = server.take();
    let log: String = con.take_log().iter().map(|l| l.text.clone()).collect();
    assert!(
        !log.contains("s3cret-Pass") && !log.contains("taro-pw-1"),
        "a password in the console log"
    );
    (end, obs)
}

fn used(obs: &Observations) -> Option<String> {
    obs.connections
        .iter()
        .flat_map(|c| c.auth.iter())
        .find(|a| a.ok)
        .map(|a| a.mechanism.clone())
}

/// Each enabled set × each server offer: the mechanism used, or the error class.
#[rstest]
#[case::default_vs_plain_login("digest-md5,cram-md5,login,plain", &["PLAIN", "LOGIN"], "LOGIN")]
#[case::default_vs_plain("digest-md5,cram-md5,login,plain", &["PLAIN"], "PLAIN")]
#[case::default_vs_cram_plain("digest-md5,cram-md5,login,plain", &["PLAIN", "CRAM-MD5"], "CRAM-MD5")]
#[case::default_vs_digest_cram("digest-md5,cram-md5,login,plain", &["CRAM-MD5", "DIGEST-MD5"], "DIGEST-MD5")]
#[case::default_vs_nothing("digest-md5,cram-md5,login,plain", &[], "auth_no_mechanism")]
#[case::default_vs_xoauth2("digest-md5,cram-md5,login,plain", &["XOAUTH2"], "auth_no_mechanism")]
#[case::plain_vs_login("plain", &["LOGIN"], "auth_no_mechanism")]
#[case::plain_vs_plain_login("plain", &["PLAIN", "LOGIN"], "PLAIN")]
#[case::login_cram_vs_all("cram-md5,login", &["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"], "CRAM-MD5")]
#[case::xoauth2_first("xoauth2,plain", &["PLAIN", "XOAUTH2"], "XOAUTH2")]
#[case::none_enabled("none", &["PLAIN"], "auth_no_mechanism")]
fn mechanism_sets_by_server_offers(
    #[case] enabled: &str,
    #[case] offered: &[&str],
    #[case] want: &str,
) {
    let config = SmtpConfig {
        auth: offers(offered),
        accounts: vec![account("printer", "s3cret-Pass", None)],
        ..SmtpConfig::default()
    };
    let settings = [
        ("smtp.auth.enabled", "on"),
        ("smtp.auth.methods", enabled),
        ("smtp.auth.token", "ya29.good-token"),
    ];
    let (end, obs) = run(&settings, config, None, None);
    match &end {
        JobEnd::Done => assert_eq!(used(&obs).as_deref(), Some(want), "{obs:#?}"),
        JobEnd::Failed { class, .. } => {
            assert_eq!(class, want, "{end:?}");
            assert!(obs.messages.is_empty(), "nothing is sent");
        }
    }
}

#[test]
fn a_wrong_password_is_auth_failed_with_the_servers_reply() {
    let config = SmtpConfig {
        auth: offers(&["PLAIN"]),
        accounts: vec![account("printer", "another", None)],
        ..SmtpConfig::default()
    };
    let (end, obs) = run(&[("smtp.auth.enabled", "on")], config, None, None);
    match end {
        JobEnd::Failed { class, detail } => {
            assert_eq!(class, "auth_failed");
            assert!(detail.contains("535"), "{detail}");
        }
        JobEnd::Done => panic!("delivered with a wrong password"),
    }
    assert!(obs.messages.is_empty());
}

#[test]
fn with_auth_off_the_device_never_authenticates_and_530_is_auth_required() {
    let offered = SmtpConfig {
        auth: offers(&["PLAIN", "LOGIN"]),
        accounts: vec![account("printer", "s3cret-Pass", None)],
        ..SmtpConfig::default()
    };
    let (end, obs) = run(&[], offered, None, None);
    assert_eq!(end, JobEnd::Done);
    assert!(
        obs.connections.iter().all(|c| c.auth.is_empty()),
        "AUTH off, yet it authenticated"
    );
    let required = SmtpConfig {
        auth: offers(&["PLAIN"]),
        accounts: vec![account("printer", "s3cret-Pass", None)],
        policy: Policy {
            require_auth: true,
            ..Policy::default()
        },
        ..SmtpConfig::default()
    };
    let (end, _) = run(&[], required, None, None);
    match end {
        JobEnd::Failed { class, detail } => {
            assert_eq!(class, "auth_required");
            assert!(detail.contains("530"), "{detail}");
        }
        JobEnd::Done => panic!("delivered to a server that requires AUTH"),
    }
}

#[test]
fn device_user_credentials_and_envelope() {
    let config = SmtpConfig {
        auth: offers(&["LOGIN"]),
        accounts: vec![account("taro", "taro-pw-1", None)],
        policy: Policy {
            require_auth: true,
            ..Policy::default()
        },
        ..SmtpConfig::default()
    };
    let settings = [
        ("smtp.auth.enabled", "on"),
        ("smtp.auth.source", "device_user"),
    ];
    let (end, obs) = run(&settings, config, None, Some("taro"));
    assert_eq!(end, JobEnd::Done, "{obs:#?}");
    let [m] = obs.messages.as_slice() else {
        panic!("{obs:#?}")
    };
    assert_eq!(m.auth_user.as_deref(), Some("taro"));
    // SPEC §3.8: with device_user credentials MAIL FROM is the job user's address.
    assert_eq!(m.mail_from, "taro@hil.test");
}

#[rstest]
#[case::configured_realm_wins("mail.hil.test", "accept")]
#[case::first_of_several_offered("", "auth_failed")]
fn digest_md5_realms(#[case] realm: &str, #[case] want: &str) {
    let config = SmtpConfig {
        auth: offers(&["DIGEST-MD5"]),
        realms: vec!["corp.hil.test".into(), "mail.hil.test".into()],
        accounts: vec![account("printer", "s3cret-Pass", Some("mail.hil.test"))],
        ..SmtpConfig::default()
    };
    let settings = [("smtp.auth.enabled", "on"), ("smtp.auth.realm", realm)];
    let (end, _) = run(&settings, config, None, None);
    let got = match &end {
        JobEnd::Done => "accept",
        JobEnd::Failed { class, .. } => class.as_str(),
    };
    assert_eq!(got, want, "{end:?}");
}

#[test]
fn the_send_without_auth_variant_sends_without_auth() {
    let config = SmtpConfig {
        auth: offers(&["LOGIN"]),
        accounts: vec![account("printer", "s3cret-Pass", None)],
        ..SmtpConfig::default()
    };
    let settings = [("smtp.auth.enabled", "on"), ("smtp.auth.methods", "plain")];
    let (end, obs) = run(&settings, config, Some("send-without-auth"), None);
    assert_eq!(end, JobEnd::Done);
    let [m] = obs.messages.as_slice() else {
        panic!("{obs:#?}")
    };
    assert_eq!(m.auth_user, None, "sent without AUTH");
}
