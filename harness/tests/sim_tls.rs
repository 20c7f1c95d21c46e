//! The simulated device over TLS, against the fake SMTP server and the certificate
//! zoo, over real sockets: each TLS mode × each listener kind, and each verification
//! flag × each zoo certificate, the verdict taken from `certs/manifest.toml` (the
//! zoo's OCSP responder and CRL server running where the certificates point).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hil::device::{JobEnd, TriggerAnswer};
use hil_mail::faults::{Action, Fault, When};
use hil_mail::smtp::{ListenerKind, SmtpConfig, Step};
use hil_mail::smtp_server::{Listen, Observations, ServerOptions, SmtpServer};
use rstest::rstest;

/// The zoo as the tests serve it: its certificates re-signed to point at this test
/// binary's own responder (a free port), so that test binaries and runs beside them
/// each have theirs.
fn certs() -> PathBuf {
    responder().clone()
}

/// The zoo's OCSP responder and CRL server on a free port, for the whole test binary;
/// answers the zoo folder whose certificates point at it.
fn responder() -> &'static PathBuf {
    static STARTED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let r = STARTED.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs");
        let cache = std::env::temp_dir().join("hil-test-zoo-cache");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(tx.send(Err(e.to_string()))),
            };
            rt.block_on(async move {
                let served = hil_zoo::served::serve(
                    &src,
                    None,
                    &cache,
                    1.0,
                    hil_zoo::responder::RevocationFault::None,
                )
                .await;
                match served {
                    Ok(s) => {
                        let _ = tx.send(Ok(s.dir.clone()));
                        std::future::pending::<()>().await;
                        drop(s);
                    }
                    Err(e) => drop(tx.send(Err(e.to_string()))),
                }
            })
        });
        rx.recv().map_err(|e| e.to_string())?
    });
    match r {
        Ok(dir) => dir,
        Err(e) => panic!("the zoo's responder cannot start: {e}"),
    }
}

/// Runs one scan on a fresh simulated device against one fake server listener.
fn run(
    kind: ListenerKind,
    cert: &str,
    bind_ip: &str,
    settings: &[(&str, &str)],
    config: SmtpConfig,
) -> (JobEnd, Observations) {
    run_variant(kind, cert, bind_ip, settings, config, &[])
}

/// `run`, the device following the firmware variants named.
fn run_variant(
    kind: ListenerKind,
    cert: &str,
    bind_ip: &str,
    settings: &[(&str, &str)],
    config: SmtpConfig,
    variants: &[&str],
) -> (JobEnd, Observations) {
    let mut extra = vec!["--resolve", "mx.hil.test=127.0.0.1"];
    for v in variants {
        extra.extend(["--variant", v]);
    }
    let (sim, mut con) = common::sim(&extra);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let identity = (kind != ListenerKind::Plain).then(|| {
        hil_mail::tls::load(
            cert,
            &certs().join(format!("{cert}.crt")),
            &certs().join(format!("{cert}.key")),
        )
        .expect("zoo cert")
    });
    let bind: SocketAddr = format!("{bind_ip}:0").parse().expect("bind");
    let server = rt
        .block_on(SmtpServer::start_with(
            vec![Listen {
                kind,
                bind,
                identity,
            }],
            config,
            ServerOptions::default(),
        ))
        .expect("server");
    let port = server.addr().port().to_string();
    // The server runs on a thread of its own while the console is driven here.
    let driver = std::thread::spawn(move || rt.block_on(std::future::pending::<()>()));
    let mut pairs: Vec<(String, String)> = vec![
        ("smtp.port".into(), port.clone()),
        ("smtp.ssl_port".into(), port),
        ("smtp.timeout".into(), "30".into()),
        ("admin.address".into(), "admin@hil.test".into()),
        ("device.address".into(), "mfp@hil.test".into()),
        ("smtp.verify.expiry".into(), "off".into()),
    ];
    pairs.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let root = std::fs::read_to_string(certs().join("root.crt")).expect("root.crt");
    let imported = con.import_cert(&root).expect("cert import");
    assert_eq!(imported.status, hil::device::Status::Ok, "cert import");
    let a = con.apply(&common::keyed(&pairs), &[]).expect("apply");
    assert_eq!(a.status, hil::device::Status::Ok, "{pairs:?}");
    let TriggerAnswer::Job(id) = con
        .trigger("scan", &[("to", "a@hil.test"), ("size_kb", "3")])
        .expect("trigger")
    else {
        panic!("refused")
    };
    let end = con.wait_job(id, Duration::from_secs(20)).expect("job end");
    assert!(server.wait_idle(Duration::from_secs(5)));
    drop(sim);
    drop(driver);
    (end, server.take())
}

fn class(end: &JobEnd) -> &str {
    match end {
        JobEnd::Done => "accept",
        JobEnd::Failed { class, .. } => class,
    }
}

#[rstest]
#[case::smtps_to_tls("smtps", ListenerKind::Tls, "accept")]
#[case::smtps_to_plain("smtps", ListenerKind::Plain, "tls_handshake")]
#[case::smtps_to_starttls("smtps", ListenerKind::Starttls, "tls_handshake")]
#[case::starttls_to_starttls("starttls", ListenerKind::Starttls, "accept")]
#[case::starttls_to_plain("starttls", ListenerKind::Plain, "starttls_unavailable")]
#[case::starttls_to_tls("starttls", ListenerKind::Tls, "timeout")]
#[case::none_to_starttls("none", ListenerKind::Starttls, "accept")]
#[case::none_to_tls("none", ListenerKind::Tls, "timeout")]
fn tls_mode_by_listener_kind(#[case] mode: &str, #[case] kind: ListenerKind, #[case] want: &str) {
    let (end, obs) = run(
        kind,
        "valid",
        "127.0.0.1",
        &[("smtp.server", "127.0.0.1"), ("smtp.tls", mode)],
        SmtpConfig::default(),
    );
    assert_eq!(class(&end), want, "{end:?}\n{obs:#?}");
    if want == "accept" {
        let [m] = obs.messages.as_slice() else {
            panic!("{obs:#?}")
        };
        // Encrypted unless the device was told `none`, even with every check off.
        assert_eq!(m.tls, mode != "none");
        assert_eq!(obs.connections[0].tls.is_some(), mode != "none");
    }
    if mode == "starttls" && want == "accept" {
        let t: Vec<&str> = obs.connections[0]
            .transcript
            .iter()
            .map(|e| e.text.as_str())
            .collect();
        let ehlos = t.iter().filter(|l| l.starts_with("EHLO")).count();
        assert_eq!(ehlos, 2, "EHLO again after STARTTLS: {t:?}");
    }
    if want == "starttls_unavailable" {
        // Nothing after the EHLO: no MAIL, no QUIT.
        let t: Vec<&str> = obs.connections[0]
            .transcript
            .iter()
            .map(|e| e.text.as_str())
            .collect();
        assert!(
            !t.iter()
                .any(|l| l.starts_with("MAIL") || l.starts_with("QUIT")),
            "{t:?}"
        );
    }
}

#[test]
fn starttls_answered_454_fails_and_sends_nothing_more() {
    let config = SmtpConfig {
        faults: vec![Fault {
            step: Step::Starttls,
            when: When {
                nth: None,
                probability: None,
            },
            action: Action::Reply {
                code: 454,
                text: "4.7.0 TLS not available".into(),
            },
        }],
        ..SmtpConfig::default()
    };
    let (end, obs) = run(
        ListenerKind::Starttls,
        "valid",
        "127.0.0.1",
        &[("smtp.server", "127.0.0.1"), ("smtp.tls", "starttls")],
        config,
    );
    match &end {
        JobEnd::Failed { class, detail } => {
            assert_eq!(class, "starttls_unavailable");
            assert!(detail.contains("454"), "{detail}");
        }
        JobEnd::Done => panic!("delivered in plaintext after a refused STARTTLS"),
    }
    let t: Vec<&str> = obs.connections[0]
        .transcript
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        t.iter()
            .filter(|l| l.starts_with("MAIL") || l.starts_with("QUIT"))
            .count(),
        0,
        "{t:?}"
    );
}

/// Each zoo certificate with one flag on, as `manifest.toml` says.
#[rstest]
fn one_flag_against_every_zoo_certificate(
    #[values("expiry", "cn", "key_usage", "chain", "revocation")] flag: &str,
) {
    responder();
    let text = std::fs::read_to_string(certs().join("manifest.toml")).expect("manifest");
    let manifest: toml::Value = toml::from_str(&text).expect("manifest parses");
    let entries = manifest["cert"].as_array().expect("certs");
    let mut bad = Vec::new();
    for c in entries {
        let name = c["name"].as_str().unwrap_or_default();
        let want = c["expect"][flag].as_str().unwrap_or_default();
        let address = c["server_address"].as_str().unwrap_or_default();
        let bind = if address == "::1" {
            "[::1]"
        } else {
            "127.0.0.1"
        };
        let key = format!("smtp.verify.{flag}");
        let (end, obs) = run(
            ListenerKind::Tls,
            name,
            bind,
            &[
                ("smtp.server", address),
                ("smtp.tls", "smtps"),
                (key.as_str(), "on"),
            ],
            SmtpConfig::default(),
        );
        // What the server saw: a message inside TLS when accepted; nothing after the
        // handshake when refused (the device never spoke SMTP).
        let delivered = obs.messages.len() == 1 && obs.messages.iter().all(|m| m.tls);
        let spoke = obs
            .connections
            .iter()
            .any(|c| c.transcript.iter().any(|e| e.text.starts_with("EHLO")));
        if (want == "accept") != delivered || (want != "accept" && spoke) {
            bad.push(format!(
                "{name}: {flag}: the server saw {} messages, EHLO {spoke}",
                obs.messages.len()
            ));
        }
        if class(&end) != want {
            bad.push(format!(
                "{name}: {flag} expected {want}, the device said {end:?}"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The firmware variants of SPEC, each shown to change the outcome it is about.
#[rstest]
#[case::plaintext_after_starttls_failure(
    "plaintext-after-starttls-failure",
    ListenerKind::Plain,
    "valid",
    &[("smtp.tls", "starttls")],
    "starttls_unavailable"
)]
#[case::cn_only_refuses_san_only(
    "cn-only",
    ListenerKind::Tls,
    "san_only",
    &[("smtp.tls", "smtps"), ("smtp.verify.cn", "on")],
    "accept"
)]
#[case::soft_fail_revocation(
    "soft-fail-revocation",
    ListenerKind::Tls,
    "no_revocation_info",
    &[("smtp.tls", "smtps"), ("smtp.verify.revocation", "on")],
    "cert_revocation_unknown"
)]
fn variants_change_the_outcome(
    #[case] variant: &str,
    #[case] kind: ListenerKind,
    #[case] cert: &str,
    #[case] settings: &[(&str, &str)],
    #[case] reference: &str,
) {
    let mut all = vec![("smtp.server", "localhost")];
    all.extend_from_slice(settings);
    let (end, _) = run(kind, cert, "127.0.0.1", &all, SmtpConfig::default());
    assert_eq!(class(&end), reference, "the reference device: {end:?}");
    let (end, obs) = run_variant(
        kind,
        cert,
        "127.0.0.1",
        &all,
        SmtpConfig::default(),
        &[variant],
    );
    let flipped = match reference {
        "accept" => class(&end) != "accept",
        _ => class(&end) == "accept",
    };
    assert!(flipped, "{variant}: {end:?}");
    if variant == "plaintext-after-starttls-failure" {
        let [m] = obs.messages.as_slice() else {
            panic!("{obs:#?}")
        };
        assert!(!m.tls, "delivered in plaintext: the finding");
    }
    if variant == "cn-only" {
        assert_eq!(class(&end), "cert_name");
    }
}

#[test]
fn an_ipv6_server_address_with_a_zone() {
    let (end, obs) = run(
        ListenerKind::Plain,
        "valid",
        "[::1]",
        &[("smtp.server", "::1%lo")],
        SmtpConfig::default(),
    );
    assert_eq!(end, JobEnd::Done);
    assert!(
        obs.connections[0].peer.starts_with("[::1]"),
        "{}",
        obs.connections[0].peer
    );
}
