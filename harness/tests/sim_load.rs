//! Server load reduction (SPEC §4) on the simulated device, against the fake server
//! over real sockets: each `load.mode` within and over its limit, `message/partial`
//! fragments reassembled by the server, and the download URL served by the device.

mod common;

use std::io::Read;
use std::time::Duration;

use hil::device::{JobEnd, TriggerAnswer};
use hil::verdict::expected_scan_bytes;
use hil_mail::smtp::SmtpConfig;
use hil_mail::smtp_server::{Observations, SmtpServer};
use mail_parser::MessageParser;
use rstest::rstest;

/// One scan; the device is returned too, as its download service must outlive the call.
fn run(
    settings: &[(&str, &str)],
    size_kb: u32,
    extra_args: &[&str],
) -> (JobEnd, Observations, common::Sim) {
    let (sim, mut con) = common::sim(extra_args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(SmtpServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            SmtpConfig::default(),
        ))
        .expect("server");
    let port = server.addr().port().to_string();
    let mut pairs: Vec<(String, String)> = vec![
        ("smtp.server".into(), "127.0.0.1".into()),
        ("smtp.port".into(), port),
        ("admin.address".into(), "admin@hil.test".into()),
        ("device.address".into(), "mfp@hil.test".into()),
    ];
    pairs.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    assert_eq!(
        con.apply(&common::keyed(&pairs), &[])
            .expect("apply")
            .status,
        hil::device::Status::Ok
    );
    let kb = size_kb.to_string();
    let TriggerAnswer::Job(id) = con
        .trigger("scan", &[("to", "a@hil.test,b@hil.test"), ("size_kb", &kb)])
        .expect("trigger")
    else {
        panic!("refused")
    };
    let end = con.wait_job(id, Duration::from_secs(30)).expect("job end");
    assert!(server.wait_idle(Duration::from_secs(5)));
    let obs = server.take();
    (end, obs, sim)
}

fn attachment(data: &[u8]) -> Option<Vec<u8>> {
    let m = MessageParser::default().parse(data)?;
    let a = m.attachments().next()?;
    Some(a.contents().to_vec())
}

fn url_in(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(str::to_string)
}

#[rstest]
#[case::none_whole("none", 300, "whole")]
#[case::split_small_is_whole("split", 50, "whole")]
#[case::split_large_is_fragments("split", 300, "fragments")]
#[case::abort_within_limit("abort_over_limit", 50, "whole")]
#[case::abort_over_limit("abort_over_limit", 300, "size_over_limit")]
#[case::url_over_within_limit("url_over_limit", 50, "whole")]
#[case::url_over_limit("url_over_limit", 300, "url")]
#[case::url_always_small("url_always", 50, "url")]
fn each_load_mode(#[case] mode: &str, #[case] size_kb: u32, #[case] want: &str) {
    let settings = [
        ("load.mode", mode),
        ("load.split_size", "100"),
        ("load.max_size", "limited"),
        ("load.server_capacity", "200"),
    ];
    let (end, obs, _device) = run(&settings, size_kb, &[]);
    match want {
        "size_over_limit" => {
            match &end {
                JobEnd::Failed { class, .. } => assert_eq!(class, "size_over_limit"),
                JobEnd::Done => panic!("sent over the limit"),
            }
            assert!(
                obs.connections.is_empty(),
                "a connection for a refused message"
            );
            return;
        }
        _ => assert_eq!(end, JobEnd::Done, "{obs:#?}"),
    }
    let scan = expected_scan_bytes(size_kb);
    match want {
        "whole" => {
            let [m] = obs.messages.as_slice() else {
                panic!("{} messages", obs.messages.len())
            };
            assert_eq!(attachment(&m.data).as_deref(), Some(scan.as_slice()));
            assert!(obs.reassembled.is_empty());
        }
        "fragments" => {
            let n = obs.messages.len();
            assert!(n >= 4, "300 KB of scan in 100 KB fragments: {n}");
            for (i, m) in obs.messages.iter().enumerate() {
                assert!(
                    m.data.len() <= 100 * 1024,
                    "fragment {i}: {} bytes",
                    m.data.len()
                );
                let mime = m.mime.as_ref().expect("parsed");
                let subject = mime.subject.clone().unwrap_or_default();
                assert!(
                    subject.starts_with(&format!("[{}/{n}]", i + 1)),
                    "{subject}"
                );
                assert_eq!(m.recipients, vec!["a@hil.test", "b@hil.test"]);
                assert_eq!(m.bare_lf + m.long_lines, 0);
            }
            // Each fragment its own transaction; the server rebuilt the whole message.
            assert_eq!(obs.connections.len(), n);
            let [whole] = obs.reassembled.as_slice() else {
                panic!("{} reassembled", obs.reassembled.len())
            };
            assert_eq!(whole.total as usize, n);
            assert_eq!(attachment(&whole.data).as_deref(), Some(scan.as_slice()));
            let parsed = MessageParser::default().parse(&whole.data).expect("MIME");
            assert!(parsed
                .subject()
                .is_some_and(|s| s.starts_with("Scanned document")));
        }
        "url" => {
            let [m] = obs.messages.as_slice() else {
                panic!("{} messages", obs.messages.len())
            };
            assert_eq!(attachment(&m.data), None, "the attachment is left out");
            let url = url_in(&m.data).expect("a download URL in the mail");
            let mut body = Vec::new();
            ureq::get(&url)
                .call()
                .expect("download")
                .into_reader()
                .read_to_end(&mut body)
                .expect("body");
            assert_eq!(body, scan, "the file at the URL is the scan");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn the_download_url_expires() {
    // 60 s of device time at scale 20: 3 s here.
    let settings = [("load.mode", "url_always")];
    let (end, obs, _device) = run(&settings, 10, &["--url-ttl", "60"]);
    assert_eq!(end, JobEnd::Done);
    let url = url_in(&obs.messages[0].data).expect("url");
    assert!(ureq::get(&url).call().is_ok(), "available at first");
    std::thread::sleep(Duration::from_millis(3500));
    match ureq::get(&url).call() {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("still served after it expired: {other:?}"),
    }
}
