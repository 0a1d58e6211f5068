//! The `[server]` section: where the live server listens and how much each client may hold.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8750"   # loopback by default; any other address needs HELOFLOW_TOKEN
//! max_clients = 64            # open connections at once (1 to 1024)
//! client_buffer = 1024        # rows queued per tap client before it is disconnected (16 to 65536)
//! history_rows = 600          # rows kept per stream for clients asking for history (0 to 100000)
//! client_timeout_s = 10       # a client that accepts no bytes this long is disconnected (1 to 600)
//! ```
//!
//! The token is never read from the pipeline file (recordings keep that file as provenance): it
//! comes from the environment variable [`TOKEN_ENV`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::config::options::Options;
use crate::sinks::tap::TapLimits;

/// The environment variable holding the access token.
pub const TOKEN_ENV: &str = "HELOFLOW_TOKEN";

/// Shortest token accepted: a guessable token protects nothing.
pub const MIN_TOKEN_LEN: usize = 16;

/// The address `heloflow demo` and `[server]` use by default.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8750);

/// The validated `[server]` options.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Address and port to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Connections open at once; more are answered 503 and closed.
    pub max_clients: usize,
    /// What the tap hub keeps and queues.
    pub taps: TapLimits,
    /// How long a client may leave written bytes unread (or send no request) before it is
    /// disconnected.
    pub client_timeout: Duration,
    /// Listen on any free port when `listen`'s is taken (the demo's default address), instead
    /// of failing.
    pub any_port_if_taken: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN,
            max_clients: 64,
            taps: TapLimits::default(),
            client_timeout: Duration::from_secs(10),
            any_port_if_taken: false,
        }
    }
}

impl ServerConfig {
    /// Reads the `[server]` table's options; problems are recorded in `options`.
    pub fn parse(options: &mut Options) -> Self {
        let defaults = ServerConfig::default();
        let listen = match options.string("listen") {
            None => defaults.listen,
            Some(text) => match parse_listen(text.get_ref()) {
                Ok(address) => address,
                Err(message) => {
                    options.error_at(
                        "listen",
                        message,
                        "give an IP address and port, for example listen = \"127.0.0.1:8750\"",
                    );
                    defaults.listen
                }
            },
        };
        let max_clients = options.integer("max_clients", 64, 1..1025) as usize;
        let client_buffer = options.integer("client_buffer", 1024, 16..65_537) as usize;
        let history_rows = options.integer("history_rows", 600, 0..100_001) as usize;
        let client_timeout = options.integer("client_timeout_s", 10, 1..601) as u64;
        ServerConfig {
            listen,
            max_clients,
            taps: TapLimits {
                history_rows,
                client_buffer,
            },
            client_timeout: Duration::from_secs(client_timeout),
            any_port_if_taken: false,
        }
    }

    /// Who may connect: anyone on loopback, or only requests carrying the token from
    /// [`TOKEN_ENV`] (required for any other address, and honoured on loopback when set).
    pub fn access(&self) -> Result<Access, String> {
        let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
        match token {
            Some(token) if token.len() < MIN_TOKEN_LEN => Err(format!(
                "{TOKEN_ENV} is {} characters long; use at least {MIN_TOKEN_LEN} random characters (for example `openssl rand -hex 16`)",
                token.len()
            )),
            Some(token) => Ok(Access::Token(token)),
            None if self.listen.ip().is_loopback() => Ok(Access::Loopback),
            None => Err(format!(
                "the server would listen on {}, which is not a loopback address: set {TOKEN_ENV} to a secret token (clients then send `Authorization: Bearer TOKEN` or `?token=TOKEN`), or listen on 127.0.0.1",
                self.listen
            )),
        }
    }
}

/// Parses a listen address: an IP address and a port (`127.0.0.1:8750`, `[::1]:8750`).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse::<SocketAddr>().map_err(|_| {
        format!("`{text}` is not an IP address with a port (host names are not resolved)")
    })
}

/// Who may use the server.
#[derive(Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone who can reach the loopback address.
    Loopback,
    /// Only requests carrying this token.
    Token(String),
}

/// Never prints the token.
impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Loopback => f.write_str("Loopback"),
            Access::Token(_) => f.write_str("Token(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_ip_and_port() {
        assert_eq!(parse_listen("127.0.0.1:8750").unwrap(), DEFAULT_LISTEN);
        assert!(parse_listen("[::1]:0").unwrap().ip().is_loopback());
        assert!(parse_listen("localhost:8750").is_err());
        assert!(parse_listen("127.0.0.1").is_err());
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let access = Access::Token("a-very-secret-token-123".into());
        assert_eq!(format!("{access:?}"), "Token(..)");
    }
}
