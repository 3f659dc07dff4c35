//! Headless Chromium (Debian's chromium and chromium-driver) driven over WebDriver, for the
//! page tests: a session that trusts exactly the server's key, and a page helper that fills
//! forms, waits for addresses and text, takes screenshots (in `target/screenshots/`, to be
//! looked at) and reads the console.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::{Server, free_port};

/// chromedriver's log endpoint: the browser console since the last call.
#[derive(Debug)]
pub struct BrowserLogs;

impl WebDriverCompatibleCommand for BrowserLogs {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A Chrome DevTools command, for an exact viewport size.
#[derive(Debug)]
pub struct Cdp(pub &'static str, pub serde_json::Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.0, "params": self.1}).to_string()),
        )
    }
}

#[derive(Debug)]
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Starts chromedriver and a Chromium session that trusts exactly the server's key.
pub async fn browser(server: &Server) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (apt-get install chromium chromium-driver)");
    let driver = Driver(child);
    let pem = std::fs::read(server.cert_dir.join("certificate.crt")).unwrap();
    let leaf = rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    let pin = base64(&perch_certs::spki_sha256(&leaf).unwrap());
    let caps = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": {"browser": "ALL"},
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", format!("--ignore-certificate-errors-spki-list={pin}")]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no WebDriver session: {e}"),
        }
    }
}

#[allow(missing_debug_implementations)]
pub struct Page<'a> {
    pub c: &'a Client,
    pub base: String,
    pub shots: PathBuf,
}

impl<'a> Page<'a> {
    /// A page on `server`, its screenshots in `target/screenshots/`.
    pub fn new(c: &'a Client, server: &Server) -> Self {
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Page {
            c,
            base: format!("https://localhost:{}", server.https.port()),
            shots,
        }
    }

    /// Signs in through the login form and waits for the page it leads to.
    pub async fn login(&self, name: &str, password: &str, lands_at: &str) {
        self.fill("name", name).await;
        self.fill("password", password).await;
        self.submit("/login").await;
        self.at(lands_at).await;
    }

    pub async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_owned()
    }

    /// Waits (bounded) until the browser is at `path`.
    pub async fn at(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.path().await != path {
            assert!(
                Instant::now() < deadline,
                "expected {path}, at {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn fill(&self, id: &str, value: &str) {
        let field = self.c.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn submit(&self, form_action: &str) {
        let css = format!("form[action='{form_action}'] button[type=submit]");
        self.c
            .find(Locator::Css(&css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// The text of the first element matching `css` once it contains `needle`, waiting
    /// (bounded) for it: after a submit to the page's own address the browser shows the
    /// previous page, with the same elements, until the answer arrives. The last text read
    /// when it never does.
    pub async fn text_containing(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text(css).await;
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first element matching `css`, waiting (bounded) for it to appear:
    /// after a submit the browser may still show the previous page for a moment.
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The page may change between finding the element and reading it (a stale
            // element): then it is looked for again.
            let read = match self.c.find(Locator::Css(css)).await {
                Ok(e) => e.text().await,
                Err(e) => Err(e),
            };
            match read {
                Ok(text) => return text,
                Err(e) if Instant::now() > deadline => panic!("{css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub async fn click_link(&self, text: &str) {
        self.c
            .find(Locator::LinkText(text))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Waits (bounded) until the browser's URL is `what` (`ok` says when).
    pub async fn wait_url(&self, what: &str, ok: impl Fn(&url::Url) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.c.current_url().await.unwrap();
            if ok(&url) {
                return;
            }
            assert!(Instant::now() < deadline, "not at {what}: {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.c
            .issue_cmd(Cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
            ))
            .await
            .unwrap();
    }

    /// Asserts that the page is no wider than `width` (no sideways scrolling on a phone).
    pub async fn assert_fits(&self, width: f64) {
        let scroll = self
            .c
            .execute("return document.documentElement.scrollWidth", vec![])
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        assert!(
            scroll <= width,
            "no sideways scrolling at {width}px: the page is {scroll}px wide"
        );
    }

    /// Asserts that the console showed no error since the last check.
    pub async fn clean(&self, step: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "console errors at {step}: {errors:?}");
    }

    /// Console errors since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let logs = self.c.issue_cmd(BrowserLogs).await.unwrap();
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].to_string())
            .collect()
    }
}
