//! Receivers the alerting tests run themselves: a webhook that keeps what Alertmanager
//! posts, and a plain SMTP server that keeps the mail it is given.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One notification: the request's `Authorization` header, and Alertmanager's JSON.
type Notification = (Option<String>, serde_json::Value);

/// An HTTP server on loopback that answers 200 to every POST and keeps the bodies (with the
/// request's `Authorization` header).
#[derive(Debug)]
pub struct Webhook {
    pub url: String,
    got: Arc<Mutex<Vec<Notification>>>,
}

impl Webhook {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let (mut length, mut auth) = (0usize, None);
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        auth = Some(line["authorization:".len()..].trim().to_owned());
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(v) = serde_json::from_slice(&body)
                {
                    keep.lock().expect("lock").push((auth, v));
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { url, got }
    }

    /// Every notification so far: (Authorization header, Alertmanager's JSON).
    pub fn received(&self) -> Vec<Notification> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits for a notification with this status (`firing`, `resolved`) holding an alert
    /// named `alertname`, at most `within`.
    pub fn wait_for(
        &self,
        alertname: &str,
        status: &str,
        within: Duration,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(n) = self.find(alertname, status) {
                return Some(n);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A notification so far with this status holding an alert named `alertname`.
    pub fn find(&self, alertname: &str, status: &str) -> Option<serde_json::Value> {
        self.received().into_iter().map(|(_, v)| v).find(|v| {
            v["status"] == status
                && v["alerts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| a["labels"]["alertname"] == alertname))
        })
    }
}

/// An SMTP server on loopback (no TLS, no auth) that keeps each message's text.
#[derive(Debug)]
pub struct Smtp {
    pub addr: String,
    mails: Arc<Mutex<Vec<String>>>,
}

impl Smtp {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
        let addr = listener.local_addr().expect("addr").to_string();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let keep = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut out) = stream else { continue };
                let _ = out.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(out.try_clone().expect("clone"));
                let _ = out.write_all(b"220 perch-test ESMTP\r\n");
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-perch-test\r\n250 8BITMIME\r\n",
                        "HELO" => b"250 perch-test\r\n",
                        "DATA" => {
                            let _ = out.write_all(b"354 go on\r\n");
                            let mut mail = String::new();
                            loop {
                                line.clear();
                                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n"
                                {
                                    break;
                                }
                                mail.push_str(&line);
                            }
                            keep.lock().expect("lock").push(mail);
                            b"250 kept\r\n"
                        }
                        "QUIT" => {
                            let _ = out.write_all(b"221 bye\r\n");
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = out.write_all(reply);
                }
            }
        });
        Self { addr, mails }
    }

    /// Waits for a message holding `needle`, at most `within`.
    pub fn wait_for(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(m) = self
                .mails
                .lock()
                .expect("lock")
                .iter()
                .find(|m| m.contains(needle))
            {
                return Some(m.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
