//! The tools `cargo xtask test` provides, really run: each test starts the
//! server on a free port and talks its protocol to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use auftrag_testkit::tools;

/// SecantusDB answers a MongoDB `hello` (an OP_MSG, wire protocol opcode
/// 2013) as a writable primary.
#[test]
fn secantusdb_answers_hello() {
    let server = tools::secantusdb();
    let mut stream = TcpStream::connect(server.addr()).expect("connect to SecantusDB");

    // BSON {hello: 1, $db: "admin"}
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend(b"hello\0");
    doc.extend(1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend(b"$db\0");
    doc.extend(6i32.to_le_bytes());
    doc.extend(b"admin\0");
    doc.push(0);
    let doc = [&(doc.len() as i32 + 4).to_le_bytes()[..], &doc].concat();
    // OP_MSG: header (length, request id, response to, opcode), flags, a body section
    let body = [&0u32.to_le_bytes()[..], &[0u8], &doc].concat();
    let mut message = Vec::new();
    message.extend((16 + body.len() as i32).to_le_bytes());
    message.extend(7i32.to_le_bytes());
    message.extend(0i32.to_le_bytes());
    message.extend(2013i32.to_le_bytes());
    message.extend(body);
    stream.write_all(&message).expect("send hello");

    let mut length = [0u8; 4];
    stream.read_exact(&mut length).expect("a reply");
    let mut reply = vec![0u8; i32::from_le_bytes(length) as usize - 4];
    stream.read_exact(&mut reply).expect("the whole reply");
    assert_eq!(&reply[4..8], &7i32.to_le_bytes(), "a reply to our request");
    assert_eq!(&reply[8..12], &2013i32.to_le_bytes(), "an OP_MSG");
    let contains = |bytes: &[u8]| reply.windows(bytes.len()).any(|w| w == bytes);
    // {ok: 1.0} and {isWritablePrimary: true} as BSON elements
    let ok = [&[0x01][..], b"ok\0", &1.0f64.to_le_bytes()].concat();
    let primary = [&[0x08][..], b"isWritablePrimary\0", &[1]].concat();
    assert!(
        contains(&ok) && contains(&primary),
        "hello answered without ok: 1 and isWritablePrimary: true: {}\nserver output:\n{}",
        String::from_utf8_lossy(&reply),
        server.output()
    );
}

/// aiosmtpd takes a message over SMTP and prints it.
#[test]
fn smtp_server_receives_a_message() {
    let server = tools::smtp_server();
    let stream = TcpStream::connect(server.addr()).expect("connect to aiosmtpd");
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut writer = stream;
    // The reply's last line ("250 ...", not "250-...") gives its code.
    let mut reply = || {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("an SMTP reply");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line[..3].to_owned();
            }
        }
    };
    assert_eq!(reply(), "220", "the greeting");
    let subject = format!("auftrag testkit {}", server.port());
    let mut say = |line: &str, code: &str| {
        writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("send");
        assert_eq!(reply(), code, "the reply to {line:?}");
    };
    say("EHLO auftrag.test", "250");
    say("MAIL FROM:<orders@auftrag.test>", "250");
    say("RCPT TO:<staff@auftrag.test>", "250");
    say("DATA", "354");
    say(&format!("Subject: {subject}\r\n\r\nhello\r\n."), "250");
    say("QUIT", "221");
    // The handler printed the message before its 250.
    assert!(
        server.output().contains(&format!("Subject: {subject}")),
        "aiosmtpd did not print the message:\n{}",
        server.output()
    );
}

/// schemathesis runs and knows its command `run`.
#[test]
fn schemathesis_runs() {
    let help = tools::run_python_tool("schemathesis", ["run", "--help"]);
    assert!(
        help.contains("--checks"),
        "schemathesis run --help:\n{help}"
    );
}

/// A minimal HTTP/1.1 exchange (ChromeDriver answers with a Content-Length).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to ChromeDriver");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).expect("a status line");
    let code = status
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("an HTTP status");
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a header");
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("a length");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
    (code, serde_json::from_slice(&body).expect("a JSON body"))
}

/// ChromeDriver drives the headless Chromium: a session opens a page and
/// reads its title.
#[test]
fn chromedriver_drives_headless_chromium() {
    let driver = tools::chromedriver_server();
    let profile = tempfile::tempdir().expect("a profile folder");
    let mut args: Vec<String> = tools::CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let capabilities = serde_json::json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": tools::chromium(), "args": args},
    }}});
    let (code, session) = http(driver.port(), "POST", "/session", &capabilities.to_string());
    assert_eq!(
        code,
        200,
        "new session: {session}\nChromeDriver output:\n{}",
        driver.output()
    );
    let id = session["value"]["sessionId"]
        .as_str()
        .expect("a session id")
        .to_owned();
    let page = serde_json::json!({"url": "data:text/html,<title>auftrag testkit</title>"});
    let (code, answer) = http(
        driver.port(),
        "POST",
        &format!("/session/{id}/url"),
        &page.to_string(),
    );
    assert_eq!(code, 200, "open the page: {answer}");
    let (code, title) = http(driver.port(), "GET", &format!("/session/{id}/title"), "");
    let (closed, _) = http(driver.port(), "DELETE", &format!("/session/{id}"), "");
    assert_eq!(code, 200, "the title: {title}");
    assert_eq!(title["value"], "auftrag testkit");
    assert_eq!(closed, 200, "session closed");
}
