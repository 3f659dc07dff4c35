//! One module per subcommand. Each returns what to print (text or JSON) or a [`Failure`]
//! with the exit code `--help` documents.

pub mod config;
pub mod exporters;
pub mod services;
pub mod status;
pub mod summary;
pub mod unregister;

use perch_certs::trust::TrustMode;

use crate::client::{ClientError, Server};
use crate::config::{AgentConfig, ConfigError, Trust};

/// What a command prints: text, or JSON with `--json`; and the exit code (0, or 5 when
/// `status` found a problem it reports).
#[derive(Debug)]
pub struct Output {
    pub text: String,
    pub json: serde_json::Value,
    pub code: u8,
}

impl Output {
    pub fn new(text: String, json: serde_json::Value) -> Self {
        Self {
            text,
            json,
            code: 0,
        }
    }
}

/// A command that failed: the message for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    pub fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self::from_client(&e)
    }
}

impl Failure {
    /// The failure for a client error, with advice where the error alone is not enough.
    pub fn from_client(e: &ClientError) -> Self {
        let message = match e {
            ClientError::Refused { code, .. } if code == "unauthenticated" => format!(
                "{e}: the node token was refused: the node was deleted or unregistered on the server. Enroll again with `perch-admin config --force ...`"
            ),
            _ => e.to_string(),
        };
        Self {
            code: e.exit_code(),
            message,
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::usage(e.to_string())
    }
}

/// The trust mode a saved config asks for.
pub fn trust_of(config: &AgentConfig) -> TrustMode {
    match (config.trust, config.pin()) {
        (Trust::Pinned, Some(pin)) => TrustMode::Pinned(pin),
        _ => TrustMode::Verified(config.ca_file.clone()),
    }
}

/// The server of a saved config.
pub fn server_of(config: &AgentConfig) -> Result<Server, ClientError> {
    Server::new(&config.server, &trust_of(config))
}
