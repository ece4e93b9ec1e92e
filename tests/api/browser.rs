//! The web pages in a real browser: Debian's chromium, headless, driven
//! through chromedriver with fantoccini. `cargo xtask test` installs both
//! and sets `AUFTRAG_TEST_CHROMEDRIVER`; without it, `chromedriver` on PATH
//! is used, and without either these tests fail (they never pass without a
//! browser).
//!
//! With `AUFTRAG_SCREENSHOTS=DIR` the tests save screenshots of the main
//! pages there (`docs/screens/` in the repository).

use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::*;

/// A chromedriver of this test (own process group) and a browser session.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the chromium it started, by their process group
        // (started by this test), also when the test failed
        // SAFETY: kill(2) with the negated id of the group this test made.
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

fn chromedriver() -> String {
    if let Ok(path) = std::env::var("AUFTRAG_TEST_CHROMEDRIVER") {
        return path;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromedriver"))
            .find(|p| p.is_file())
    });
    match on_path {
        Some(p) => p.to_string_lossy().into_owned(),
        None => panic!(
            "the browser tests need chromium and chromedriver: run them with `cargo xtask test`, which installs both and sets AUFTRAG_TEST_CHROMEDRIVER, or put chromedriver on PATH"
        ),
    }
}

impl Browser {
    pub async fn start() -> Self {
        Self::start_in("en-US").await
    }

    /// A browser whose language (`Accept-Language`) is `lang`.
    pub async fn start_in(lang: &str) -> Self {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut options = json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--window-size=1200,900", format!("--lang={lang}"),
            format!("--user-data-dir={}", profile.path().display()),
        ], "prefs": {"intl.accept_languages": lang}});
        if let Ok(binary) = std::env::var("AUFTRAG_TEST_CHROMIUM") {
            options["binary"] = json!(binary);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        // chromedriver answers once it listens: try a bounded number of times
        for _ in 0..200 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Self {
                        client,
                        driver,
                        _profile: profile,
                    };
                }
                Err(e) => {
                    last = Some(e.to_string());
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        panic!("chromedriver did not start a browser session: {last:?}");
    }

    pub async fn goto(&self, server: &TestServer, path: &str) {
        self.client
            .goto(&format!("{}{path}", server.base))
            .await
            .expect("goto");
    }

    /// Signs in on the sign-in page with the demo token of `role`.
    pub async fn sign_in(&self, server: &TestServer, role: &str) {
        self.goto(server, "/ui/login").await;
        self.fill("#token", server.token(role)).await;
        self.click("form[action='/ui/login'] button").await;
        let who = self.text(".who").await;
        assert!(who.contains(&person_of(role)), "signed in: {who}");
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.expect(css);
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Clicks what `css` finds without leaving the page.
    pub async fn press(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// Clicks a link or a form's button, and waits until the browser has
    /// left the page (its document element is gone), so what is read next
    /// is the new page.
    pub async fn click(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.expect("page");
        self.press(css).await;
        for _ in 0..400 {
            if old.tag_name().await.is_err() {
                // the new page is there once its document is complete
                self.client
                    .wait()
                    .for_element(Locator::Css("body"))
                    .await
                    .expect("the new page");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("clicking {css} did not leave the page");
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// Saves a screenshot as `name`.png when `AUFTRAG_SCREENSHOTS` is set.
    pub async fn screenshot(&self, name: &str) {
        if let Ok(dir) = std::env::var("AUFTRAG_SCREENSHOTS") {
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::create_dir_all(&dir).expect("screenshot dir");
            std::fs::write(format!("{dir}/{name}.png"), png).expect("write screenshot");
        }
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

fn person_of(role: &str) -> String {
    match role {
        "employee" => "1001",
        "admin" => "1002",
        "deputy" => "1003",
        "itb" => "1004",
        "staff" => "1005",
        other => other,
    }
    .to_owned()
}

/// An order of the admin that waits for staff (the MAC of another device).
async fn waiting_order(s: &TestServer) -> i64 {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": ZAM2213_MAC}))
        .await;
    assert_eq!(r.body["state"], "WAITING", "{}", r.body);
    r.body["id"].as_i64().expect("id")
}

async fn state_of(s: &TestServer, id: i64) -> String {
    s.order(id).await["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn staff_claims_and_accepts(db: Db) {
    let s = TestServer::start_on(db).await;
    let id = waiting_order(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    b.goto(&s, "/ui/queue").await;
    let row = b.text(&format!("#order-{id}")).await;
    assert!(
        row.contains(ZAM2212) && row.contains("change_device") && row.contains("1002"),
        "{row}"
    );
    assert!(
        row.contains("00:1a:2b:3c:4d:02 is already used by"),
        "the warning that parked it: {row}"
    );
    b.screenshot("queue").await;
    b.client
        .set_window_size(390, 844)
        .await
        .expect("phone width");
    b.screenshot("queue-phone").await;
    b.client
        .set_window_size(1200, 900)
        .await
        .expect("desktop width");
    b.click(&format!("#order-{id} a")).await;
    b.click("#claim-button").await;
    assert!(b.text("#claim").await.contains("1005"), "claimed by me");
    b.goto(&s, "/ui/queue?mine=1").await;
    assert!(b.text(&format!("#order-{id}")).await.contains("1005"));
    b.screenshot("queue-mine").await;
    b.goto(&s, &format!("/ui/orders/{id}")).await;
    b.screenshot("order-waiting").await;
    b.fill("#accept-comment", "same device, second site").await;
    b.click("#accept").await;
    assert_eq!(b.text("#state").await, "COMPLETED");
    let timeline = b.text("#timeline").await;
    for want in [
        "INSERTED",
        "WAITING",
        "claim · 1005",
        "COMPLETED",
        "same device, second site",
    ] {
        assert!(timeline.contains(want), "timeline has {want}: {timeline}");
    }
    let page = b.body().await;
    assert!(
        page.contains("00:1a:2b:3c:4d:01 → 00:1a:2b:3c:4d:02"),
        "changed old → new: {page}"
    );
    assert!(page.contains("Permit"), "the decisions: {page}");
    b.screenshot("order-completed").await;
    assert_eq!(state_of(&s, id).await, "COMPLETED");
    let doc = s.order(id).await;
    assert_eq!(doc["claims"][0]["event"], "claim", "{doc}");
    b.close().await;
}
for_both_backends!(staff_claims_and_accepts);

#[tokio::test]
async fn staff_edits_the_mac_and_it_is_checked_again() {
    let s = TestServer::start().await;
    let id = waiting_order(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    b.goto(&s, &format!("/ui/orders/{id}")).await;
    b.press("details summary").await;
    b.fill("#f-hwa", JSCLAB7_MAC).await;
    // "add another" draws the form again: the values and the comment kept
    b.fill("#fields-comment", "MAC from the delivery note")
        .await;
    b.click("#add-f-add_aliases").await;
    assert_eq!(b.value("#f-hwa").await, JSCLAB7_MAC);
    assert_eq!(
        b.value("#fields-comment").await,
        "MAC from the delivery note"
    );
    b.click("#save-fields").await;
    // checked again: the new MAC is another device's too, so it waits with
    // the new warning
    assert_eq!(b.text("#state").await, "WAITING");
    let page = b.body().await;
    assert!(
        page.contains(&format!(
            "hardware address {JSCLAB7_MAC} is already used by"
        )),
        "{page}"
    );
    let doc = s.order(id).await;
    assert_eq!(doc["fields"]["hwa"], JSCLAB7_MAC);
    // a malformed MAC: the order is checked and aborted with the reason
    b.press("details summary").await;
    b.fill("#f-hwa", "00:1a:zz").await;
    b.click("#save-fields").await;
    assert_eq!(b.text("#state").await, "ABORTED");
    assert!(b.body().await.contains("is not a hardware address"));
    b.close().await;
}

#[tokio::test]
async fn staff_reject_with_a_comment_and_markup_stays_text() {
    let s = TestServer::start().await;
    let id = waiting_order(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    b.goto(&s, &format!("/ui/orders/{id}")).await;
    // without a comment: refused, nothing happens
    b.click("#reject").await;
    assert!(b.body().await.contains("say why the order is rejected"));
    assert_eq!(state_of(&s, id).await, "WAITING");
    let xss =
        "<script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\">";
    b.fill("#reject-comment", &format!("not this device {xss}"))
        .await;
    b.click("#reject").await;
    assert_eq!(b.text("#state").await, "ABORTED");
    let timeline = b.text("#timeline").await;
    assert!(
        timeline.contains(&format!("not this device {xss}")),
        "the comment as text: {timeline}"
    );
    assert!(
        b.client
            .find_all(Locator::Css("main script, main img"))
            .await
            .expect("find")
            .is_empty()
    );
    assert!(!b.client.title().await.expect("title").contains("owned"));
    let source = b.client.source().await.expect("source");
    assert!(source.contains("&lt;script&gt;"), "escaped");
    b.screenshot("order-rejected").await;
    b.close().await;
}

const INTERFACES_OK: &str = r#"[{"net":"134.94.16.0/24","ipv4":"134.94.16.99","hwa":"00:1a:2b:3c:4d:99","aliases":[{"name":"zam2299.zam.kfa-juelich.de","canonical":"Y"}]}]"#;

impl Browser {
    /// Picks the option `value` of the select `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
    }

    /// The value of the input `css`.
    pub async fn value(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn employee_registers_a_device_through_the_form() {
    let s = TestServer::start().await;
    let b = Browser::start().await;
    b.sign_in(&s, "employee").await;
    b.goto(&s, "/ui/new").await;
    b.click("a[href='/ui/new/register_device']").await;
    b.fill("#f-host", "zam2299").await;
    b.select("#f-dv_class", "PC").await;
    b.fill("#f-geb", "16.3").await;
    b.fill("#f-raum", "R 227").await;
    b.fill("#f-admin", "1001").await;
    // the first interface: a subnet chosen from JuNet's, typed inputs
    b.select("#f-interfaces-0-net", "134.94.16.0/24").await;
    b.fill("#f-interfaces-0-ipv4", "134.94.16.99").await;
    b.fill("#f-interfaces-0-hwa", "00:1a:2b:3c:4d:99").await;
    b.fill(
        "#f-interfaces-0-aliases-0-name",
        "zam2299.zam.kfa-juelich.de",
    )
    .await;
    b.select("#f-interfaces-0-aliases-0-canonical", "Y").await;
    // a second alias of it: "add another" draws the form again with one
    // more alias and what was typed kept
    b.click("#add-f-interfaces-0-aliases").await;
    assert_eq!(b.value("#f-interfaces-0-hwa").await, "00:1a:2b:3c:4d:99");
    assert_eq!(b.value("#f-interfaces-0-net").await, "134.94.16.0/24");
    b.fill(
        "#f-interfaces-0-aliases-1-name",
        "www2299.zam.kfa-juelich.de",
    )
    .await;
    // the second interface (the blank record), with a wrong MAC
    b.select("#f-interfaces-1-net", "134.94.32.0/24").await;
    b.fill("#f-interfaces-1-ipv4", "134.94.32.99").await;
    b.fill("#f-interfaces-1-hwa", "00:1a:2b:zz").await;
    b.fill(
        "#f-interfaces-1-aliases-0-name",
        "zam2299-lab.zam.kfa-juelich.de",
    )
    .await;
    b.click("#submit").await;
    // the portal stage answers at the input of the second interface's MAC;
    // nothing is stored
    let at_input = b.text("#e-f-interfaces-1-hwa").await;
    assert!(at_input.contains("not a hardware address"), "{at_input}");
    assert!(
        b.client
            .find_all(Locator::Css("#e-f-interfaces-0-hwa"))
            .await
            .expect("find")
            .is_empty(),
        "the first interface's MAC is fine"
    );
    assert_eq!(
        b.client
            .find(Locator::Css("#f-interfaces-1-hwa"))
            .await
            .expect("input")
            .attr("aria-invalid")
            .await
            .expect("attr")
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        b.value("#f-host").await,
        "zam2299",
        "the form keeps what was typed"
    );
    assert_eq!(
        b.value("#f-interfaces-0-aliases-1-name").await,
        "www2299.zam.kfa-juelich.de"
    );
    b.client
        .execute(
            "document.querySelector('#f-interfaces-1').scrollIntoView({block: 'start'})",
            vec![],
        )
        .await
        .expect("scroll");
    b.screenshot("new-order-error").await;
    b.client
        .set_window_size(390, 844)
        .await
        .expect("phone width");
    b.client
        .execute(
            "document.querySelector('#f-interfaces-1-hwa').scrollIntoView({block: 'center'})",
            vec![],
        )
        .await
        .expect("scroll");
    b.screenshot("new-order-phone").await;
    b.client
        .set_window_size(1200, 900)
        .await
        .expect("desktop width");
    let mine = s
        .call(
            Some("employee"),
            reqwest::Method::GET,
            "/api/v1/orders",
            None,
        )
        .await;
    assert_eq!(
        mine.body["orders"].as_array().map(Vec::len),
        Some(0),
        "{}",
        mine.body
    );
    b.fill("#f-interfaces-1-hwa", "00:1a:2b:3c:4d:98").await;
    b.click("#submit").await;
    assert_eq!(b.text("#state").await, "COMPLETED", "{}", b.body().await);
    let id = page_order_id(&b).await;
    let doc = s.order(id).await;
    let interfaces = doc["fields"]["interfaces"].as_array().expect("interfaces");
    assert_eq!(interfaces.len(), 2, "{doc}");
    assert_eq!(
        interfaces[0]["aliases"].as_array().map(Vec::len),
        Some(2),
        "{doc}"
    );
    assert_eq!(interfaces[1]["hwa"], "00:1a:2b:3c:4d:98", "{doc}");
    assert_eq!(interfaces[1]["net"], "134.94.32.0/24", "{doc}");
    b.goto(&s, "/ui/orders").await;
    assert!(b.body().await.contains("register_device"));
    b.screenshot("my-orders").await;
    b.close().await;
}

#[tokio::test]
async fn a_record_of_the_form_is_removed_and_blank_ones_are_ignored() {
    let s = TestServer::start().await;
    let b = Browser::start().await;
    b.sign_in(&s, "employee").await;
    b.goto(&s, "/ui/new/register_device").await;
    b.fill("#f-interfaces-0-hwa", "00:1a:2b:3c:4d:01").await;
    b.click("#add-f-interfaces").await;
    b.click("#add-f-interfaces").await;
    // typed, a blank one, another blank one: remove the typed one
    assert_eq!(b.value("#f-interfaces-0-hwa").await, "00:1a:2b:3c:4d:01");
    assert!(
        !b.client
            .find_all(Locator::Css("#f-interfaces-2-hwa"))
            .await
            .expect("find")
            .is_empty()
    );
    b.click("#remove-f-interfaces-0").await;
    assert_eq!(b.value("#f-interfaces-0-hwa").await, "");
    // Enter in a text input places the order (not "add another"); the
    // blank records are no interfaces, so the required list is missing
    b.fill("#f-host", "zam2298\u{E007}").await;
    b.client
        .wait()
        .for_element(Locator::Css("#e-f-interfaces"))
        .await
        .expect("the finding at the list of interfaces");
    let at_list = b.text("#e-f-interfaces").await;
    assert!(at_list.contains("required"), "{at_list}");
    b.close().await;
}

#[tokio::test]
async fn no_staff_pages_or_actions_without_the_right() {
    let s = TestServer::start().await;
    let id = waiting_order(&s).await;
    let b = Browser::start().await;
    // the admin placed the order and may read it, but is not staff
    b.sign_in(&s, "admin").await;
    assert!(
        b.client
            .find_all(Locator::Css("a[href='/ui/queue']"))
            .await
            .unwrap()
            .is_empty()
    );
    b.goto(&s, "/ui/queue").await;
    assert!(
        b.body().await.contains("is for staff"),
        "{}",
        b.body().await
    );
    assert!(
        b.client
            .find_all(Locator::Css("tr[id^=order-]"))
            .await
            .unwrap()
            .is_empty()
    );
    b.goto(&s, &format!("/ui/orders/{id}")).await;
    assert!(
        b.client
            .find_all(Locator::Css("#accept"))
            .await
            .unwrap()
            .is_empty()
    );
    // the POST sent by hand, with the session and its form token
    let cookie = b
        .client
        .get_named_cookie("auftrag_session")
        .await
        .expect("session cookie");
    let csrf = b
        .client
        .find(Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    for action in ["accept", "claim", "reject"] {
        let r = s
            .client()
            .post(format!("{}/ui/orders/{id}/{action}", s.base))
            .header("cookie", format!("auftrag_session={}", cookie.value()))
            .form(&[("csrf", csrf.as_str()), ("comment", "by hand")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN, "{action}");
        assert!(r.text().await.unwrap().contains("only staff may do this"));
    }
    assert_eq!(state_of(&s, id).await, "WAITING");
    // the employee may not even read it
    let b2 = Browser::start().await;
    b2.sign_in(&s, "employee").await;
    b2.goto(&s, &format!("/ui/orders/{id}")).await;
    assert!(
        b2.body()
            .await
            .contains(&format!("there is no order {id} that you may read"))
    );
    b2.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let s = TestServer::start().await;
    let id = waiting_order(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    b.goto(&s, &format!("/ui/orders/{id}")).await;
    b.client
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())",
            vec![],
        )
        .await
        .expect("remove the form tokens");
    b.click("#accept").await;
    assert!(
        b.body().await.contains("form token is missing or wrong"),
        "{}",
        b.body().await
    );
    assert_eq!(state_of(&s, id).await, "WAITING");
    // a wrong token is no better
    b.goto(&s, &format!("/ui/orders/{id}")).await;
    b.client
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'f'.repeat(64))",
            vec![],
        )
        .await
        .expect("change the form tokens");
    b.click("#accept").await;
    assert!(b.body().await.contains("form token is missing or wrong"));
    assert_eq!(state_of(&s, id).await, "WAITING");
    // the sign-in form too (its token is in a cookie of its own)
    let r = s
        .client()
        .post(format!("{}/ui/login", s.base))
        .form(&[("token", s.token("staff"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    b.close().await;
}

#[tokio::test]
async fn sign_in_with_a_one_time_link_and_sign_out() {
    let s = TestServer::start().await;
    let secret =
        auftrag_engine::ui::session::create_link(&s.engine, "1005", time::Duration::minutes(5))
            .await
            .expect("link");
    let b = Browser::start().await;
    b.goto(&s, &format!("/ui/login/{secret}")).await;
    b.screenshot("sign-in-link").await;
    b.click("form button").await;
    assert!(b.text(".who").await.contains("1005"));
    let cookie = b
        .client
        .get_named_cookie("auftrag_session")
        .await
        .expect("cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(
        cookie.same_site().map(|s| s.to_string()).as_deref(),
        Some("Strict")
    );
    b.click("nav form button").await;
    assert!(
        b.client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/login")
    );
    b.goto(&s, "/ui/queue").await;
    assert!(
        b.client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/login"),
        "signed out"
    );
    b.screenshot("sign-in").await;
    // the link worked once
    b.goto(&s, &format!("/ui/login/{secret}")).await;
    b.click("form button").await;
    assert!(b.body().await.contains("used already or has expired"));
    b.close().await;
}

#[tokio::test]
async fn definitions_page_draws_the_workflows() {
    let s = TestServer::start().await;
    let b = Browser::start().await;
    b.sign_in(&s, "employee").await;
    b.click("a[href='/ui/definitions']").await;
    let workflow = s.engine.defs.workflows[0].name;
    // the diagram is an SVG the browser could draw
    let drawn = b
        .client
        .execute(
            "const i = document.querySelector(arguments[0]); return i.complete && i.naturalWidth > 0;",
            vec![json!(format!("#workflow-{workflow} img"))],
        )
        .await
        .expect("image state");
    assert_eq!(drawn, json!(true), "the diagram of {workflow} loads");
    let checks = b.text("#checks").await;
    assert!(
        checks.contains("check_hwa_unique")
            && checks.contains("warning")
            && checks.contains("error"),
        "{checks}"
    );
    assert!(b.text("#order-types").await.contains("register_device"));
    b.screenshot("definitions").await;
    b.close().await;
}

// ------------------------------------------------ history, statistics, jobs

/// The MAC the history tests set.
const SET_MAC: &str = "00:1a:2b:3c:4d:42";

/// The text of every element `css` finds, in document order.
async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let v = b
        .client
        .execute(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);",
            vec![json!(css)],
        )
        .await
        .expect("texts");
    serde_json::from_value(v).expect("a list of texts")
}

/// The ids of the orders listed on a history page.
async fn result_ids(b: &Browser) -> Vec<i64> {
    let v = b
        .client
        .execute(
            "return [...document.querySelectorAll('tr[id^=result-]')].map(e => e.id.slice(7));",
            vec![],
        )
        .await
        .expect("result ids");
    serde_json::from_value::<Vec<String>>(v)
        .expect("ids")
        .iter()
        .map(|s| s.parse().expect("an id"))
        .collect()
}

/// A change of zam2212's MAC that completes, one that waits (the MAC of
/// another device), and a device the employee registers.
async fn history_orders(s: &TestServer) -> (i64, i64, i64) {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "hwa": SET_MAC}))
        .await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    let set = r.body["id"].as_i64().unwrap();
    let waiting = waiting_order(s).await;
    let r = s
        .call(
            Some("employee"),
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(json!({"type": "register_device", "fields": {
                "host": "zam2299", "dv_class": "PC", "geb": "16.3", "raum": "R 227", "admin": "1001",
                "interfaces": serde_json::from_str::<serde_json::Value>(INTERFACES_OK).unwrap()}})),
        )
        .await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    (set, waiting, r.body["id"].as_i64().unwrap())
}

async fn staff_searches_the_history(db: Db) {
    let s = TestServer::start_on(db).await;
    let (set, waiting, registered) = history_orders(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    b.click("nav a[href='/ui/history']").await;
    // staff see every order, newest first
    assert_eq!(result_ids(&b).await, [registered, waiting, set]);
    b.fill("#q-field", "hwa").await;
    b.fill("#q-new", SET_MAC).await;
    b.click("#search").await;
    assert_eq!(result_ids(&b).await, [set], "{}", b.body().await);
    let row = b.text(&format!("#result-{set}")).await;
    assert!(
        row.contains(&format!("hwa: {ZAM2212_MAC} → {SET_MAC}")) && row.contains(ZAM2212),
        "{row}"
    );
    b.screenshot("history").await;
    b.click(&format!("#result-{set} a")).await;
    assert_eq!(b.text("#state").await, "COMPLETED");
    // a page at a time: the next page goes on where the first ended
    b.goto(&s, "/ui/history?limit=2&sort=oldest").await;
    assert_eq!(result_ids(&b).await, [set, waiting]);
    b.click("#next-page").await;
    assert_eq!(result_ids(&b).await, [registered]);
    assert!(
        b.client
            .find_all(Locator::Css("#next-page"))
            .await
            .unwrap()
            .is_empty(),
        "the last page"
    );
    // a day picked in the date input is taken as its start (UTC)
    let today = time::OffsetDateTime::now_utc().date();
    b.goto(&s, "/ui/history").await;
    b.client
        .execute(
            "document.querySelector('#q-since').value = arguments[0];",
            vec![json!(today.next_day().unwrap().to_string())],
        )
        .await
        .expect("set the date");
    b.click("#search").await;
    assert!(result_ids(&b).await.is_empty());
    assert!(b.text("#no-results").await.contains("No order"));
    // a bad `since` is refused with the API's reason, at its input
    b.goto(&s, "/ui/history?since=yesterday&host=zam2212").await;
    let at_field = b.text(".field.invalid").await;
    assert!(
        at_field.contains("Created from") && at_field.contains("must be an RFC 3339 time"),
        "{at_field}"
    );
    assert_eq!(
        b.text("#e-q-since").await,
        "must be an RFC 3339 time such as 2026-11-24T08:00:00Z"
    );
    assert_eq!(
        b.client
            .find(Locator::Css("#q-since"))
            .await
            .unwrap()
            .attr("aria-describedby")
            .await
            .unwrap()
            .as_deref(),
        Some("e-q-since")
    );
    assert!(result_ids(&b).await.is_empty(), "nothing searched");
    b.screenshot("history-error").await;
    b.close().await;
}
for_both_backends!(staff_searches_the_history);

async fn stats_page_draws_the_orders(db: Db) {
    let s = TestServer::start_on(db).await;
    history_orders(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    b.click("nav a[href='/ui/stats']").await;
    // orders per type: a bar each, its type and count written at it
    assert_eq!(
        texts(&b, "#chart-orders svg text").await,
        ["change_device", "2", "register_device", "1"]
    );
    assert_eq!(
        b.client
            .find_all(Locator::Css("#chart-orders svg rect"))
            .await
            .unwrap()
            .len(),
        2
    );
    // per day by type: today's bar holds all three, one segment per type
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let per_day = texts(&b, "#chart-per-period svg text").await;
    assert!(
        per_day.contains(&"3".to_owned()) && per_day.contains(&today[5..].to_owned()),
        "{per_day:?}"
    );
    assert_eq!(
        texts(&b, "#chart-per-period svg rect title").await,
        [
            format!("{today} · change_device: 2"),
            format!("{today} · register_device: 1")
        ]
    );
    assert_eq!(
        texts(&b, "#chart-per-period .legend li").await,
        ["change_device", "register_device"]
    );
    // the automation rate: the closed change completed without waiting
    let automation = texts(&b, "#chart-automation svg text").await;
    assert!(
        automation.contains(&"100 % (1 of 1)".to_owned()),
        "{automation:?}"
    );
    assert!(
        texts(&b, "#chart-duration svg text")
            .await
            .contains(&"change_device".to_owned())
    );
    // the check that parked the waiting order
    let checks = texts(&b, "#chart-checks svg text").await;
    assert!(
        checks.contains(&"check_hwa_unique".to_owned()),
        "{checks:?}"
    );
    assert!(b.text("#numbers").await.contains("Total"));
    let to_charts = "document.querySelector('.charts').scrollIntoView({block: 'start'})";
    b.client.execute(to_charts, vec![]).await.expect("scroll");
    b.screenshot("stats").await;
    b.client
        .set_window_size(390, 844)
        .await
        .expect("phone width");
    b.client.execute(to_charts, vec![]).await.expect("scroll");
    b.screenshot("stats-phone").await;
    b.client
        .set_window_size(1200, 900)
        .await
        .expect("desktop width");
    // grouped by day
    b.client
        .find(Locator::Css("#q-by"))
        .await
        .unwrap()
        .select_by_value("day")
        .await
        .unwrap();
    b.click("#show").await;
    assert_eq!(
        texts(&b, "#chart-orders svg text").await,
        [today.clone(), "3".into()]
    );
    // a bad grouping is refused at its input
    b.goto(&s, "/ui/stats?by=colour").await;
    assert!(
        b.text("#e-q-by").await.contains("names no grouping"),
        "{}",
        b.body().await
    );
    b.close().await;
    // the employee counts what they may read: their own device
    let b = Browser::start().await;
    b.sign_in(&s, "employee").await;
    b.goto(&s, "/ui/stats").await;
    assert_eq!(
        texts(&b, "#chart-orders svg text").await,
        ["register_device", "1"]
    );
    b.close().await;
}
for_both_backends!(stats_page_draws_the_orders);

/// Jobs of the `compute` queue: one PENDING, one BUSY leased by an
/// agency, one FAILED with exit code 3 and markup in its stderr.
async fn some_jobs(s: &TestServer) -> (i64, i64) {
    use auftrag_engine::jobs::{JobState, db};
    let engine = &s.engine;
    let enqueue = |data: &'static str| async move {
        let mut conn = engine.store.write_conn().await.unwrap();
        db::enqueue(
            &mut conn,
            engine.defs,
            "compute",
            data.as_bytes(),
            "1005",
            None,
        )
        .await
        .unwrap()
    };
    enqueue("one").await;
    enqueue("two").await;
    let leases = db::lease(&engine.store, "agency-<b>lab</b>", &["compute"], 10)
        .await
        .unwrap();
    assert_eq!(leases.len(), 2);
    // one more, not leased
    enqueue("three").await;
    let failed = &leases[1];
    db::finish(
        &engine.store,
        failed.job.id,
        &failed.token,
        &db::Outcome {
            state: JobState::Failed,
            output: Vec::new(),
            exit_code: Some(3),
            error: Some(
                "the script exited with code 3; stderr: <script>document.title='owned'</script> disk full"
                    .into(),
            ),
        },
    )
    .await
    .unwrap();
    (leases[0].job.id, failed.job.id)
}

async fn staff_see_the_agency_and_its_jobs(db: Db) {
    let s = TestServer::start_on(db).await;
    let (busy, failed) = some_jobs(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    b.click("nav a[href='/ui/jobs']").await;
    // PENDING, BUSY, COMPLETED, FAILED
    assert_eq!(
        texts(&b, "#queue-compute td.num").await,
        ["1", "1", "0", "1"]
    );
    assert_eq!(
        texts(&b, "#queue-labels td.num").await,
        ["0", "0", "0", "0"]
    );
    let lease = b.text(&format!("#busy #job-{busy}")).await;
    assert!(
        lease.contains("agency-<b>lab</b>") && lease.contains("1005") && lease.contains("UTC"),
        "{lease}"
    );
    let failure = b.text(&format!("#failures #job-{failed}")).await;
    assert!(
        failure.contains("3")
            && failure.contains("stderr: <script>document.title='owned'</script> disk full"),
        "{failure}"
    );
    assert!(
        b.client
            .find_all(Locator::Css("main script, main b"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!b.client.title().await.unwrap().contains("owned"));
    b.screenshot("jobs").await;
    b.close().await;
}
for_both_backends!(staff_see_the_agency_and_its_jobs);

#[tokio::test]
async fn employee_gets_no_jobs_page_and_searches_only_own_orders() {
    let s = TestServer::start().await;
    let (_, _, registered) = history_orders(&s).await;
    some_jobs(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "employee").await;
    assert!(
        b.client
            .find_all(Locator::Css("a[href='/ui/jobs']"))
            .await
            .unwrap()
            .is_empty()
    );
    b.goto(&s, "/ui/jobs").await;
    assert!(
        b.body().await.contains("is for staff"),
        "{}",
        b.body().await
    );
    assert!(
        b.client
            .find_all(Locator::Css("#queues, #busy, #failures"))
            .await
            .unwrap()
            .is_empty()
    );
    // by hand, with the session: refused, and nothing of the jobs in it
    let cookie = b
        .client
        .get_named_cookie("auftrag_session")
        .await
        .expect("session cookie");
    let r = s
        .client()
        .get(format!("{}/ui/jobs", s.base))
        .header("cookie", format!("auftrag_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("agency-") && !page.contains("disk full"),
        "{page}"
    );
    // the history holds what the employee may read: their own order
    b.click("nav a[href='/ui/history']").await;
    assert_eq!(result_ids(&b).await, [registered]);
    let api = s
        .call(
            Some("employee"),
            reqwest::Method::GET,
            "/api/v1/history",
            None,
        )
        .await;
    assert_eq!(api.body["orders"][0]["id"], registered, "{}", api.body);
    // searching for an order of another person finds nothing
    b.goto(&s, &format!("/ui/history?field=hwa&new={SET_MAC}"))
        .await;
    assert!(result_ids(&b).await.is_empty());
    b.close().await;
}

#[tokio::test]
async fn markup_in_a_comment_stays_text_in_the_history() {
    let s = TestServer::start().await;
    let id = waiting_order(&s).await;
    let xss =
        "<script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\">";
    let r = s
        .call(
            Some("staff"),
            reqwest::Method::POST,
            &format!("/api/v1/orders/{id}/abort"),
            Some(json!({"comment": format!("not this device {xss}")})),
        )
        .await;
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    // the markup is the search text too (shown again in its input)
    b.goto(&s, "/ui/history?text=%3Cimg%20src%3Dx").await;
    assert_eq!(result_ids(&b).await, [id]);
    let comments = texts(&b, &format!("#result-{id} .comment")).await;
    assert!(
        comments
            .last()
            .is_some_and(|c| c.ends_with(&format!("not this device {xss}"))),
        "the comment as text: {comments:?}"
    );
    assert_eq!(
        b.client
            .find(Locator::Css("#q-text"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("<img src=x")
    );
    assert!(
        b.client
            .find_all(Locator::Css("main script, main img"))
            .await
            .expect("find")
            .is_empty()
    );
    assert!(!b.client.title().await.expect("title").contains("owned"));
    let source = b.client.source().await.expect("source");
    assert!(source.contains("&lt;script&gt;"), "escaped");
    b.close().await;
}

// ---------------------------------------------------------------- rollback

/// A change_device of zam2212's room by its admin, COMPLETED at once.
async fn room_change(s: &TestServer, room: &str) -> i64 {
    let r = s
        .submit("admin", json!({"host": ZAM2212, "raum": room}))
        .await;
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
    r.body["id"].as_i64().expect("id")
}

/// The id of the order page the browser shows.
async fn page_order_id(b: &Browser) -> i64 {
    let url = b.client.current_url().await.expect("url");
    url.path()
        .strip_prefix("/ui/orders/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not an order page: {url}"))
}

async fn staff_rolls_back_from_the_order_page(db: Db) {
    let s = TestServer::start_on(db).await;
    let first = room_change(&s, "R 301").await;
    let second = room_change(&s, "R 302").await;
    let b = Browser::start().await;
    b.sign_in(&s, "staff").await;
    // a later order changed the same field: refused, and named with a link
    b.goto(&s, &format!("/ui/orders/{first}")).await;
    b.click("#rollback").await;
    // (the order page again, as the answer to the form's POST)
    assert!(b.text("h1").await.contains(&format!("#{first}")));
    let message = b.text("#message").await;
    assert!(
        message.contains(&format!("order {second} (raum)")),
        "the conflict names the later order: {message}"
    );
    b.client
        .find(Locator::Css(&format!(
            "#conflicts a[href='/ui/orders/{second}']"
        )))
        .await
        .expect("a link to the order in the way");
    b.screenshot("order-rollback-conflict").await;
    // the later one rolls back: the browser lands on the rollback order
    b.goto(&s, &format!("/ui/orders/{second}")).await;
    b.click("#rollback").await;
    let rid = page_order_id(&b).await;
    assert!(rid > second, "a new order: {rid}");
    assert_eq!(b.text("#state").await, "COMPLETED");
    assert_eq!(b.text("#rollback-of").await, format!("#{second}"));
    assert!(
        b.body().await.contains("R 302 → R 301"),
        "changed back: {}",
        b.body().await
    );
    b.screenshot("order-rollback").await;
    // linked both ways, and the API says so too
    b.click("#rollback-of").await;
    assert_eq!(page_order_id(&b).await, second);
    assert_eq!(b.text(".rolled-back-by").await, format!("#{rid}"));
    assert_eq!(s.order(rid).await["links"], json!({"rollback_of": second}));
    assert_eq!(state_of(&s, rid).await, "COMPLETED");
    b.close().await;
}
for_both_backends!(staff_rolls_back_from_the_order_page);

#[tokio::test]
async fn no_rollback_without_the_right() {
    let s = TestServer::start().await;
    let id = room_change(&s, "R 303").await;
    let b = Browser::start().await;
    // the admin placed the order and may read it, but may not roll it back
    b.sign_in(&s, "admin").await;
    b.goto(&s, &format!("/ui/orders/{id}")).await;
    assert_eq!(b.text("#state").await, "COMPLETED");
    assert!(
        b.client
            .find_all(Locator::Css("#rollback, form[action$='/rollback']"))
            .await
            .unwrap()
            .is_empty(),
        "no rollback button"
    );
    let cookie = b
        .client
        .get_named_cookie("auftrag_session")
        .await
        .expect("session cookie");
    let csrf = b
        .client
        .find(Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let post = |cookie: String, csrf: String| {
        s.client()
            .post(format!("{}/ui/orders/{id}/rollback", s.base))
            .header("cookie", format!("auftrag_session={cookie}"))
            .form(&[("csrf", csrf)])
            .send()
    };
    let r = post(cookie.value().to_owned(), csrf).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(&format!("you may not roll order {id} back")),
        "{text}"
    );
    // the employee may not even read it
    let b2 = Browser::start().await;
    b2.sign_in(&s, "employee").await;
    b2.goto(&s, &format!("/ui/orders/{id}")).await;
    assert!(b2.body().await.contains("that you may read"));
    let cookie = b2
        .client
        .get_named_cookie("auftrag_session")
        .await
        .expect("session cookie");
    let csrf = b2
        .client
        .find(Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let r = post(cookie.value().to_owned(), csrf).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
    // nothing was placed
    assert!(s.order(id).await.get("links").is_none());
    b2.close().await;
    b.close().await;
    // while staff see the button on the same order
    let staff = Browser::start().await;
    staff.sign_in(&s, "staff").await;
    staff.goto(&s, &format!("/ui/orders/{id}")).await;
    staff
        .client
        .find(Locator::Css("#rollback"))
        .await
        .expect("staff see the rollback button");
    staff.close().await;
}

// ---------------------------------------------------------------- my devices

#[tokio::test]
async fn my_devices_for_admin_and_deputy() {
    let s = TestServer::start().await;
    let b = Browser::start().await;
    b.sign_in(&s, "admin").await;
    b.click("a[href='/ui/devices']").await;
    let row = b.text("#devices tr.device").await;
    assert!(row.contains("zam2212") && row.contains("admin"), "{row}");
    assert!(
        row.contains("134.94.16.") && row.contains(ZAM2212_MAC),
        "{row}"
    );
    b.screenshot("devices").await;
    // its change_device link opens the form with the device filled in
    b.click("#devices tr.device a[href^='/ui/new/change_device?']")
        .await;
    let host = b
        .client
        .find(Locator::Css("#f-host"))
        .await
        .expect("host input")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(host.as_deref(), Some(ZAM2212));
    // the deputy sees the device they deputise for, and until when
    let b2 = Browser::start().await;
    b2.sign_in(&s, "deputy").await;
    b2.goto(&s, "/ui/devices").await;
    let rows = texts(&b2, "#devices tr.device").await;
    let zam = rows
        .iter()
        .find(|r| r.contains("zam2212"))
        .unwrap_or_else(|| panic!("zam2212 for the deputy: {rows:?}"));
    assert!(zam.contains("deputy until 2027-12-31"), "{zam}");
    // the employee looks after none
    let b3 = Browser::start().await;
    b3.sign_in(&s, "employee").await;
    b3.goto(&s, "/ui/devices").await;
    assert!(b3.text("#nothing").await.contains("Nothing here"));
    b3.close().await;
    // a label with markup stays text
    let xss =
        "<script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\">";
    sqlx::query("UPDATE x_device SET DV_LABEL = $1 WHERE DV_OBJ_ID = 5001")
        .bind(xss)
        .execute(&s.db().await)
        .await
        .unwrap();
    b2.goto(&s, "/ui/devices").await;
    assert!(
        texts(&b2, "#devices .label").await.iter().any(|l| l == xss),
        "the label as text"
    );
    assert!(
        b2.client
            .find_all(Locator::Css("main script, main img"))
            .await
            .expect("find")
            .is_empty()
    );
    assert!(!b2.client.title().await.expect("title").contains("owned"));
    b2.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_german_reader_sees_the_definitions_german_texts() {
    let s = TestServer::start().await;
    let b = Browser::start_in("de-DE").await;
    b.sign_in(&s, "employee").await;
    b.goto(&s, "/ui/new").await;
    // the chrome and the order types' descriptions in German
    let types = b.text("main").await;
    assert!(types.contains("Neuaufnahme eines Geräts"), "{types}");
    b.click("a[href='/ui/new/register_device']").await;
    assert_eq!(b.text("h1").await, "Auftrag stellen: register_device");
    assert_eq!(
        b.text("#d-f-host").await,
        "Gerätename (Hostname) des neuen Geräts, z. B. zam2299 (ein voll qualifizierter Name wird auf seinen ersten Teil gekürzt). · hostname"
    );
    // a record's field, and one without a German text (the English one)
    assert!(
        b.text("#d-f-interfaces-0-net")
            .await
            .starts_with("Das Subnetz des Interfaces"),
    );
    assert_eq!(b.text("#d-f-serial").await, "string");
    b.screenshot("new-order-de").await;
    b.goto(&s, "/ui/definitions").await;
    assert!(b.body().await.contains("Eine Instanz je Auftrag"));
    b.close().await;
}
