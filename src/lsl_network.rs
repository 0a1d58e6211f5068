//! liblsl's network configuration as heloflow reads it: which file liblsl loads, its port range,
//! and whether this machine still has ports in that range for the outlets a run opens.
//!
//! liblsl (1.13 here, and 1.17 alike) gives every outlet one UDP and one TCP port from
//! `[ports] BasePort .. BasePort + PortRange`, and every resolve in progress one UDP port from the
//! same range; inlets take none. When the range is used up, outlets fall back to random ports
//! (`AllowRandomPorts`). Clients that find streams by multicast still see them, but clients that
//! find them by unicast (`KnownPeers`, the only way on a loopback-only setup or across routers)
//! query the range alone and never see those outlets. So heloflow warns at start when a pipeline
//! needs more ports than the range has free, and names every outlet that landed outside it.
//!
//! ```
//! use heloflow::lsl_network::LslNetwork;
//! let network = LslNetwork::parse(None, "[ports]\nPortRange = 1024\n");
//! assert_eq!((network.base_port, network.port_range), (16572, 1024));
//! assert!(network.in_range(17000) && !network.in_range(40000));
//! ```

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};

/// liblsl's defaults (`api_config.cpp`): base port, range and random-port fallback.
const DEFAULT_BASE_PORT: u16 = 16572;
const DEFAULT_PORT_RANGE: u16 = 32;

/// The settings of liblsl's configuration that decide discoverability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LslNetwork {
    /// The file liblsl loads, or `None` when it runs on its built-in defaults.
    pub file: Option<PathBuf>,
    /// `[ports] BasePort`.
    pub base_port: u16,
    /// `[ports] PortRange`.
    pub port_range: u16,
    /// `[lab] KnownPeers`: hosts that resolvers query by unicast, over the port range.
    pub known_peers: Vec<String>,
}

impl LslNetwork {
    /// The configuration liblsl itself loads: `LSLAPICFG`, else `lsl_api.cfg` in the working
    /// directory, else `~/lsl_api/lsl_api.cfg`, else `/etc/lsl_api/lsl_api.cfg`, else defaults.
    pub fn load() -> LslNetwork {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(path) = std::env::var_os("LSLAPICFG") {
            candidates.push(PathBuf::from(path));
        }
        candidates.push(PathBuf::from("lsl_api.cfg"));
        if let Some(home) = std::env::var_os("HOME") {
            candidates.push(Path::new(&home).join("lsl_api/lsl_api.cfg"));
        }
        candidates.push(PathBuf::from("/etc/lsl_api/lsl_api.cfg"));
        for path in candidates {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return LslNetwork::parse(Some(path), &text);
            }
        }
        LslNetwork::parse(None, "")
    }

    /// Reads the INI text liblsl reads (`[section]`, `key = value`, `;` comments); keys it does
    /// not find keep liblsl's defaults.
    pub fn parse(file: Option<PathBuf>, text: &str) -> LslNetwork {
        let mut network = LslNetwork {
            file,
            base_port: DEFAULT_BASE_PORT,
            port_range: DEFAULT_PORT_RANGE,
            known_peers: Vec::new(),
        };
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with(';') || line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match (section.as_str(), key.trim()) {
                ("ports", "BasePort") => {
                    network.base_port = value.parse().unwrap_or(network.base_port)
                }
                ("ports", "PortRange") => {
                    network.port_range = value.parse().unwrap_or(network.port_range)
                }
                ("lab", "KnownPeers") => {
                    network.known_peers = value
                        .trim_start_matches('{')
                        .trim_end_matches('}')
                        .split(',')
                        .map(str::trim)
                        .filter(|peer| !peer.is_empty())
                        .map(String::from)
                        .collect();
                }
                _ => {}
            }
        }
        network
    }

    /// The last port of the range (inclusive).
    pub fn last_port(&self) -> u16 {
        self.base_port
            .saturating_add(self.port_range.saturating_sub(1))
    }

    /// Whether `port` lies in the range unicast resolvers query.
    pub fn in_range(&self, port: u16) -> bool {
        port >= self.base_port
            && u32::from(port) < u32::from(self.base_port) + u32::from(self.port_range)
    }

    /// How many UDP ports of the range nothing on this machine holds right now (each is tried
    /// by binding it for a moment, as liblsl does).
    pub fn free_udp_ports(&self) -> usize {
        (0..self.port_range)
            .filter_map(|offset| self.base_port.checked_add(offset))
            .filter(|port| UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, *port)).is_ok())
            .count()
    }

    /// Where the configuration came from, for messages.
    pub fn describe(&self) -> String {
        match &self.file {
            Some(path) => path.display().to_string(),
            None => "liblsl's defaults (no lsl_api.cfg found)".to_string(),
        }
    }

    /// A warning when `outlets` new outlets and `resolvers` stream resolvers need more UDP ports
    /// than the range has free (`free`), or `None` when they fit.
    pub fn shortage(&self, outlets: usize, resolvers: usize, free: usize) -> Option<String> {
        let needed = outlets + resolvers;
        if needed <= free {
            return None;
        }
        let wanted = (usize::from(self.port_range) - free + needed).next_power_of_two();
        Some(format!(
            "this run needs {needed} of liblsl's ports ({outlets} outlet(s) known at start, {resolvers} stream resolver(s)), but only {free} of the {} in its range {}-{} are free on this machine (configuration: {}); outlets beyond the range get random ports, and clients that find streams by unicast (KnownPeers, the only way on loopback) will not see them. Set [ports] PortRange = {wanted} or more in the configuration of heloflow and of every client (README: \"LSL on a lab network\")",
            self.port_range,
            self.base_port,
            self.last_port(),
            self.describe(),
        ))
    }
}

/// The UDP service port an outlet's stream info announces (`v4service_port`), which unicast
/// resolvers must reach; `None` when the XML does not carry one.
pub fn service_port(info_xml: &str) -> Option<u16> {
    let start = info_xml.find("<v4service_port>")? + "<v4service_port>".len();
    let end = start + info_xml[start..].find('<')?;
    info_xml[start..end].trim().parse().ok()
}

/// The first key set twice in one section (line number from 1, `section.key`): liblsl's INI
/// reader rejects such a file whole and falls back to its defaults.
fn duplicate_key(text: &str) -> Option<(usize, String)> {
    let mut section = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for (index, line) in text.lines().map(str::trim).enumerate() {
        if line.starts_with(';') || line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = format!("{section}.{}", key.trim());
            if !seen.insert(key.clone()) {
                return Some((index + 1, key));
            }
        }
    }
    None
}

/// Refuses a `LSLAPICFG` that names a file liblsl cannot read or parse (a key set twice): liblsl
/// would only print a notice and go on with its default, network-wide configuration, which the
/// user asked not to use.
pub fn check_api_config() -> Result<(), String> {
    let Some(path) = std::env::var_os("LSLAPICFG") else {
        return Ok(());
    };
    let shown = Path::new(&path).display().to_string();
    let problem = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => "it is a directory".to_string(),
        Ok(_) => match std::fs::read(&path) {
            Ok(bytes) => match duplicate_key(&String::from_utf8_lossy(&bytes)) {
                None => return Ok(()),
                Some((line, key)) => format!(
                    "line {line} sets `{key}` a second time, and liblsl refuses a file with a duplicate key"
                ),
            },
            Err(e) => format!("it cannot be read: {e}"),
        },
        Err(e) if path.is_empty() => format!("it is empty ({e})"),
        Err(e) => format!("it cannot be opened: {e}"),
    };
    Err(format!(
        "heloflow: error: LSLAPICFG names the liblsl configuration `{shown}`, but {problem}\n  liblsl would fall back to its default, network-wide configuration; fix the file or the path, or unset LSLAPICFG to use the default on purpose"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_loopback_configuration_has_room_for_a_lab() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lsl/lsl_api.cfg");
        let text = std::fs::read_to_string(&path).expect("the shipped configuration");
        let network = LslNetwork::parse(Some(path), &text);
        assert_eq!(network.known_peers, ["127.0.0.1"]);
        assert!(network.port_range >= 1024, "{network:?}");
    }

    #[test]
    fn defaults_are_liblsls() {
        let network = LslNetwork::parse(None, "; nothing\n[multicast]\nResolveScope = machine\n");
        assert_eq!((network.base_port, network.port_range), (16572, 32));
        assert_eq!(network.last_port(), 16603);
        assert!(network.in_range(16603) && !network.in_range(16604) && !network.in_range(16571));
    }

    #[test]
    fn a_shortage_names_the_numbers_and_the_fix() {
        let network = LslNetwork::parse(None, "");
        assert_eq!(network.shortage(10, 4, 32), None);
        let warning = network.shortage(40, 4, 10).expect("a shortage");
        assert!(warning.contains("needs 44"), "{warning}");
        assert!(warning.contains("only 10 of the 32"), "{warning}");
        assert!(warning.contains("PortRange = 128"), "{warning}");
    }

    #[test]
    fn a_port_held_by_someone_else_is_not_free() {
        let held = UdpSocket::bind("0.0.0.0:0").expect("a port");
        let port = held.local_addr().expect("bound").port();
        let network = LslNetwork {
            file: None,
            base_port: port,
            port_range: 1,
            known_peers: Vec::new(),
        };
        assert_eq!(network.free_udp_ports(), 0);
        drop(held);
        assert_eq!(network.free_udp_ports(), 1);
    }

    #[test]
    fn a_key_set_twice_is_found_as_liblsl_would_refuse_it() {
        let text =
            "[ports]\nPortRange = 256\nIPv6 = disable\nPortRange = 1024\n[lab]\nPortRange = 1\n";
        assert_eq!(
            duplicate_key(text),
            Some((4, "ports.PortRange".to_string()))
        );
        assert_eq!(
            duplicate_key("[ports]\nPortRange = 1\n[lab]\nPortRange = 1\n"),
            None
        );
    }

    #[test]
    fn service_ports_are_read_from_stream_infos() {
        let xml =
            "<info><v4data_port>16580</v4data_port><v4service_port>40123</v4service_port></info>";
        assert_eq!(service_port(xml), Some(40123));
        assert_eq!(service_port("<info/>"), None);
    }
}
