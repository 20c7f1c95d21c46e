//! The flow of `examples/send_one.rs`, checked: a scenario from the library served on
//! 127.0.0.1, one mail sent by a plain `TcpStream` client, and the server's record
//! holds the conversation and the message. Real sockets, real server: the example
//! cannot rot without this failing.

// The example's `main` is not called here.
#[allow(dead_code)]
#[path = "../examples/send_one.rs"]
mod send_one;

#[test]
fn a_mail_sent_to_the_plain_scenario_arrives_and_is_recorded() {
    let path = send_one::repository().join("scenarios/plain-ok.toml");
    let outcome = send_one::run(&path).expect("the servers start");
    outcome.sent.expect("the server accepts the mail");
    let seen = outcome.seen;

    assert_eq!(seen.connections.len(), 1, "{:#?}", seen.connections);
    let conn = &seen.connections[0];
    assert!(conn.ended);
    let said: Vec<&str> = conn.transcript.iter().map(|e| e.text.as_str()).collect();
    assert!(
        said.iter()
            .any(|l| *l == format!("MAIL FROM:<{}>", send_one::FROM)),
        "{said:#?}"
    );
    assert!(said.iter().any(|l| l.starts_with("221")), "{said:#?}");

    assert_eq!(seen.messages.len(), 1);
    let m = &seen.messages[0];
    assert_eq!(m.connection, conn.id);
    assert_eq!(m.mail_from, send_one::FROM);
    assert_eq!(m.recipients, [send_one::TO]);
    assert_eq!(m.data, send_one::MESSAGE.as_bytes());
    assert_eq!(
        m.mime.as_ref().and_then(|x| x.subject.as_deref()),
        Some("one mail from send_one")
    );
}
