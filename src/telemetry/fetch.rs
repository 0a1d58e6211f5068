//! A small blocking HTTP/1.1 GET over `std::net::TcpStream`, for `heloflow top` reading
//! `/metrics`: no TLS (the server listens on loopback or a lab network), `Connection: close`,
//! bodies sent with a length, chunked or until close, at most [`MAX_BODY`] bytes.
//!
//! With a token (from `HELOFLOW_TOKEN`) it sends `Authorization: Bearer TOKEN`; no message ever
//! contains the token.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Most bytes of a response accepted (headers and body).
pub const MAX_BODY: usize = 64 << 20;

/// How long connecting, sending and each read may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where to GET: host, port and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host:port` as given (an IPv6 host in brackets).
    pub authority: String,
    /// The path, starting with `/`.
    pub path: String,
}

impl Target {
    /// Reads `ADDR` (`host:port`), or a URL `http://host:port[/path]`; `default_path` when it
    /// names none.
    pub fn parse(addr: &str, default_path: &str) -> Result<Target, String> {
        let rest = if let Some(rest) = addr.strip_prefix("http://") {
            rest
        } else if addr.contains("://") {
            return Err(format!(
                "`{addr}`: only http:// addresses can be read (heloflow's server has no TLS)"
            ));
        } else {
            addr
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, default_path),
        };
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port || authority.contains(char::is_whitespace) {
            return Err(format!(
                "`{addr}` is not an address: give host:port, e.g. 127.0.0.1:8750"
            ));
        }
        Ok(Target {
            authority: authority.to_string(),
            path: if path.is_empty() { "/" } else { path }.to_string(),
        })
    }

    /// `http://host:port/path`, for messages.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

/// GETs `target`; the body on status 200, else an error naming the status.
pub fn get(target: &Target, token: Option<&str>) -> Result<String, String> {
    let url = target.url();
    let address = target
        .authority
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve the address: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: the address resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|e| format!("{url}: cannot connect: {e} (is `heloflow run --serve` running?)"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("{url}: {e}"))?;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/plain\r\nConnection: close\r\n",
        target.path, target.authority
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{url}: cannot send the request: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut response)
        .map_err(|e| format!("{url}: cannot read the response: {e}"))?;
    if response.len() > MAX_BODY {
        return Err(format!(
            "{url}: the response is larger than {MAX_BODY} bytes"
        ));
    }
    let (status, body) = parse_response(&response).map_err(|e| format!("{url}: {e}"))?;
    match status {
        200 => String::from_utf8(body).map_err(|_| format!("{url}: the body is not UTF-8")),
        401 => Err(format!(
            "{url}: 401 Unauthorized: {}",
            if token.is_some() {
                "the server refused HELOFLOW_TOKEN"
            } else {
                "the server needs a token; set HELOFLOW_TOKEN"
            }
        )),
        other => Err(format!("{url}: the server answered {other}")),
    }
}

/// Splits an HTTP/1.1 response into its status and (de-chunked) body.
pub fn parse_response(response: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no complete header")?;
    let head = std::str::from_utf8(&response[..head_end]).map_err(|_| "the header is not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code
            .parse::<u16>()
            .map_err(|_| format!("bad status line {status_line:?}"))?,
        _ => return Err(format!("not an HTTP/1 response ({status_line:?})")),
    };
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        }
    }
    let body = &response[head_end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else if let Some(length) = length {
        body.get(..length)
            .ok_or("the body is shorter than its Content-Length")?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut short")?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("a chunk is cut short")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("a chunk is cut short")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_urls_are_read() {
        let t = Target::parse("127.0.0.1:8750", "/metrics").unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:8750/metrics");
        let t = Target::parse("http://[::1]:9/x/y", "/metrics").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("[::1]:9", "/x/y"));
        for bad in ["localhost", "https://h:1", ":80", "h:99999", "h :1"] {
            assert!(Target::parse(bad, "/metrics").is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_by_length_chunks_and_close() {
        let (status, body) =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"abc"[..]));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().1, b"Wikipedia");
        let (status, body) = parse_response(b"HTTP/1.0 401 Unauthorized\r\n\r\nno").unwrap();
        assert_eq!((status, body.as_slice()), (401, &b"no"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }
}
