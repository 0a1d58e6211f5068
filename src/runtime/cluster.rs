//! Cluster mode: one pipeline over several processes (or machines), through timely's own
//! process-to-process exchange.
//!
//! Process 0 leads: it runs the sources (so LSL discovery and file reading happen there), holds
//! every sink's writer and serves the dashboard. The other processes run workers, and the shares
//! of a source that splits by subject on every process (the simulator) their workers own: timely
//! sends them their other subjects' batches over TCP and gathers their operators' rows back on
//! worker 0, so the output is byte-identical to a one-process run. Every process runs the same
//! pipeline file with the same `-w`; before timely connects them, each process greets process 0
//! with a fingerprint of what it was given, and all refuse to run on a mismatch. The greeting's
//! connection stays open: when the run ends each process sends its counts over it, so process
//! 0's summary covers the whole run.
//!
//! ```
//! use heloflow::runtime::cluster::Cluster;
//!
//! // Two processes on this machine, at 127.0.0.1:2101 and 127.0.0.1:2102; this one is process 1.
//! let cluster = Cluster::new(2, 1, None).unwrap().unwrap();
//! assert!(!cluster.leads());
//! assert_eq!(cluster.addresses, ["127.0.0.1:2101", "127.0.0.1:2102"]);
//! // One process is no cluster.
//! assert!(Cluster::new(1, 0, None).unwrap().is_none());
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::metrics::PipelineMetrics;

/// Most processes a cluster run may have.
pub const MAX_PROCESSES: usize = 64;

/// The first port of the default addresses (timely's own default), one port per process.
pub const DEFAULT_PORT: u16 = 2101;

/// Where this process sits in a cluster run.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// This process's index; process 0 leads.
    pub process: usize,
    /// Every process's address (`host:port`), in process order; process `i` listens on its own.
    pub addresses: Vec<String>,
    /// Whether the leader publishes live taps (a `[server]` section or `--serve`): the taps are
    /// part of the dataflow, so every process must build them alike.
    pub leader_serves: bool,
}

impl Cluster {
    /// The cluster of `processes` processes in which this one is `process`, with addresses from
    /// `hostfile` (one `host:port` per line, process 0 first; blank lines and `#` comments are
    /// skipped) or `127.0.0.1:2101` onwards; `None` for a single process.
    pub fn new(
        processes: usize,
        process: usize,
        hostfile: Option<&Path>,
    ) -> Result<Option<Cluster>, String> {
        if processes == 0 || processes > MAX_PROCESSES {
            return Err(format!(
                "the number of processes must be 1 to {MAX_PROCESSES}, found {processes}"
            ));
        }
        if process >= processes {
            return Err(format!(
                "the process index must be 0 to {} for {processes} processes, found {process}",
                processes - 1
            ));
        }
        if processes == 1 {
            if hostfile.is_some() {
                return Err("--hostfile needs more than one process (--processes)".to_string());
            }
            return Ok(None);
        }
        let addresses = match hostfile {
            Some(path) => read_hostfile(path, processes)?,
            None => (0..processes)
                .map(|i| format!("127.0.0.1:{}", usize::from(DEFAULT_PORT) + i))
                .collect(),
        };
        Ok(Some(Cluster {
            process,
            addresses,
            leader_serves: false,
        }))
    }

    /// Whether this process leads (runs the sources and the sinks).
    pub fn leads(&self) -> bool {
        self.process == 0
    }

    /// The timely configuration for `threads` workers in this process.
    pub(super) fn timely_config(&self, threads: usize) -> timely::Config {
        timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads,
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        }
    }

    /// What every process must agree on: the pipeline (`identity`), the workers per process, the
    /// process count, whether the leader taps, and the heloflow version.
    pub(super) fn fingerprint(&self, identity: &str, threads: usize) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(identity.as_bytes());
        hash.update(threads.to_le_bytes());
        hash.update(self.addresses.len().to_le_bytes());
        hash.update([u8::from(self.leader_serves)]);
        hash.update(env!("CARGO_PKG_VERSION").as_bytes());
        hash.finalize().into()
    }
}

/// Reads the first `processes` addresses of a hostfile.
fn read_hostfile(path: &Path, processes: usize) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the hostfile {}: {e}", path.display()))?;
    let mut addresses = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let address = line.split('#').next().unwrap_or("").trim();
        if address.is_empty() {
            continue;
        }
        let port = address
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(port))) if !host.is_empty() && port > 0 => {}
            _ => {
                return Err(format!(
                    "{}:{}: `{address}` is not an address: give host:port (port 1 to 65535), one per line",
                    path.display(),
                    number + 1
                ))
            }
        }
        addresses.push(address.to_string());
        if addresses.len() == processes {
            return Ok(addresses);
        }
    }
    Err(format!(
        "the hostfile {} has {} addresses, but --processes is {processes}",
        path.display(),
        addresses.len()
    ))
}

/// First bytes of a handshake greeting, so a stray connection is told apart from a process.
const GREETING: &[u8; 8] = b"HLFLOW01";

/// How often a process retries reaching process 0 while it is not listening yet.
const RETRY: Duration = Duration::from_millis(100);

/// What a process tells process 0 before the dataflow connects: who it is and what it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Greeting {
    process: u64,
    threads: u64,
    processes: u64,
    fingerprint: [u8; 32],
}

impl Greeting {
    fn write(&self, to: &mut impl Write) -> std::io::Result<()> {
        to.write_all(GREETING)?;
        for number in [self.process, self.threads, self.processes] {
            to.write_all(&number.to_le_bytes())?;
        }
        to.write_all(&self.fingerprint)?;
        to.flush()
    }

    fn read(from: &mut impl Read) -> std::io::Result<Greeting> {
        let mut magic = [0u8; 8];
        from.read_exact(&mut magic)?;
        if &magic != GREETING {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a heloflow process",
            ));
        }
        let (process, threads, processes) = (read_u64(from)?, read_u64(from)?, read_u64(from)?);
        let mut fingerprint = [0u8; 32];
        from.read_exact(&mut fingerprint)?;
        Ok(Greeting {
            process,
            threads,
            processes,
            fingerprint,
        })
    }
}

impl Cluster {
    /// Checks, before timely connects the processes, that every process was given the same run:
    /// each other process greets process 0 at its address with its fingerprint, its `-w` and its
    /// `-n`, and process 0 answers each with its verdict, so all of them refuse a mismatch with
    /// the same message. (Timely's own wiring breaks on a different `-w` before any dataflow
    /// could compare them.) Blocks until every process has greeted, as timely would.
    pub(super) fn handshake(&self, fingerprint: [u8; 32], threads: usize) -> Result<Peers, String> {
        let mine = Greeting {
            process: self.process as u64,
            threads: threads as u64,
            processes: self.addresses.len() as u64,
            fingerprint,
        };
        if self.leads() {
            self.hear_greetings(mine)
        } else {
            self.greet(mine)
        }
    }

    fn hear_greetings(&self, mine: Greeting) -> Result<Peers, String> {
        let address = &self.addresses[0];
        let listener = TcpListener::bind(address)
            .map_err(|e| format!("cannot listen on {address} for the cluster: {e}"))?;
        let mut heard: Vec<(Greeting, TcpStream)> = Vec::new();
        while heard.len() + 1 < self.addresses.len() {
            let (mut stream, _) = listener
                .accept()
                .map_err(|e| format!("cannot accept the cluster's processes on {address}: {e}"))?;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            // A connection that is not a heloflow process (a port scan) is ignored.
            if let Ok(greeting) = Greeting::read(&mut stream) {
                if !heard.iter().any(|(g, _)| g.process == greeting.process) {
                    heard.push((greeting, stream));
                }
            }
        }
        heard.sort_by_key(|(g, _)| g.process);
        let verdict = verdict(&mine, heard.iter().map(|(g, _)| g));
        let reply = verdict.as_ref().err().map_or("", String::as_str);
        for (_, stream) in &mut heard {
            let _ = stream
                .write_all(&(reply.len() as u32).to_le_bytes())
                .and_then(|()| stream.write_all(reply.as_bytes()));
        }
        verdict?;
        let peers = heard
            .into_iter()
            .map(|(greeting, stream)| (greeting.process as usize, stream))
            .collect();
        Ok(Peers::Leader(peers))
    }

    fn greet(&self, mine: Greeting) -> Result<Peers, String> {
        let address = &self.addresses[0];
        let mut told = false;
        let mut stream = loop {
            match TcpStream::connect(address) {
                Ok(stream) => break stream,
                Err(_) => {
                    if !told {
                        eprintln!(
                            "heloflow: process {} of {}: waiting for process 0 at {address}",
                            self.process,
                            self.addresses.len()
                        );
                        told = true;
                    }
                    std::thread::sleep(RETRY);
                }
            }
        };
        let lost = |e: std::io::Error| format!("lost process 0 at {address} before the run: {e}");
        mine.write(&mut stream).map_err(lost)?;
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).map_err(lost)?;
        let mut reply = vec![0u8; u32::from_le_bytes(length).min(1 << 16) as usize];
        stream.read_exact(&mut reply).map_err(lost)?;
        match reply.is_empty() {
            true => Ok(Peers::Follower(stream)),
            false => Err(String::from_utf8_lossy(&reply).into_owned()),
        }
    }
}

/// How long process 0 waits, once its own run is done, for each other process's counts.
const COUNTS_TIMEOUT: Duration = Duration::from_secs(30);

/// Most counters a process sends (far above any pipeline's: a few per source, stream and
/// operator), so a corrupt length cannot make process 0 allocate without bound.
const MAX_COUNTS: usize = 1 << 20;

/// The handshake's connections, kept open for the end of the run: then every other process
/// sends process 0 what it counted ([`PipelineMetrics::cluster_counts`]), so process 0's
/// summary, and the drops it reports, cover the whole run.
#[derive(Debug)]
pub(super) enum Peers {
    /// Process 0: its connection to each other process, by process index.
    Leader(Vec<(usize, TcpStream)>),
    /// Any other process: its connection to process 0.
    Follower(TcpStream),
}

impl Peers {
    /// Process 0 adds every other process's counts to `metrics`; another process sends its own.
    /// An error names the processes whose counts did not arrive (the rest are added).
    pub(super) fn share_counts(self, metrics: &PipelineMetrics) -> Result<(), String> {
        match self {
            Peers::Follower(mut stream) => {
                let counts = metrics.cluster_counts();
                let mut bytes = Vec::with_capacity(8 * (counts.len() + 1));
                bytes.extend_from_slice(&(counts.len() as u64).to_le_bytes());
                for count in counts {
                    bytes.extend_from_slice(&count.to_le_bytes());
                }
                stream
                    .write_all(&bytes)
                    .and_then(|()| stream.flush())
                    .map_err(|e| format!("could not send this process's counts to process 0: {e}"))
            }
            Peers::Leader(peers) => {
                let mut missing = Vec::new();
                for (process, mut stream) in peers {
                    let _ = stream.set_read_timeout(Some(COUNTS_TIMEOUT));
                    let added = read_counts(&mut stream)
                        .and_then(|counts| metrics.add_cluster_counts(&counts));
                    if let Err(why) = added {
                        missing.push(format!("process {process} ({why})"));
                    }
                }
                match missing.is_empty() {
                    true => Ok(()),
                    false => Err(format!(
                        "the counts of {} did not arrive: the summary counts only what the other processes sent",
                        missing.join(", ")
                    )),
                }
            }
        }
    }
}

/// One little-endian `u64`, as greetings and counts carry their numbers.
fn read_u64(from: &mut impl Read) -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    from.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// One process's counts, as [`Peers::share_counts`] sends them.
fn read_counts(from: &mut impl Read) -> Result<Vec<u64>, String> {
    let length = read_u64(from).map_err(|e| e.to_string())? as usize;
    if length > MAX_COUNTS {
        return Err(format!(
            "{length} counters is not a heloflow process's report"
        ));
    }
    (0..length)
        .map(|_| read_u64(from).map_err(|e| e.to_string()))
        .collect()
}

/// Process 0's verdict on the greetings of the others: `Ok` when all were given its run, else
/// one message naming what differs.
fn verdict<'a>(mine: &Greeting, others: impl Iterator<Item = &'a Greeting>) -> Result<(), String> {
    let mut workers = Vec::new();
    let mut differ = Vec::new();
    for other in others {
        if other.threads != mine.threads {
            workers.push(format!(
                "process {} has -w {}",
                other.process, other.threads
            ));
        } else if other.processes != mine.processes || other.fingerprint != mine.fingerprint {
            differ.push(other.process.to_string());
        }
    }
    if !workers.is_empty() {
        return Err(format!(
            "the processes were started with different worker counts: process 0 has -w {}, {}; start every process with the same -w",
            mine.threads,
            workers.join(", ")
        ));
    }
    if differ.is_empty() {
        return Ok(());
    }
    Err(format!(
        "process 0 and process(es) {} were not given the same run: every process needs the same pipeline file, the same -w, the same --processes, the same --serve (or none) and the same heloflow version",
        differ.join(", ")
    ))
}

/// Panics timely's networking raises when another process of a cluster run goes away: not bugs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkPanic {
    /// The first: a connection read or write failed.
    ConnectionLost,
    /// What follows in the other threads of this process.
    Consequence,
}

/// Which network panic a panic's `message` is, if it is one.
pub fn network_panic(message: &str) -> Option<NetworkPanic> {
    if message.starts_with("timely communication error:") {
        Some(NetworkPanic::ConnectionLost)
    } else if message == "MergeQueue poisoned."
        || message.starts_with("Send thread panic")
        || message.starts_with("Recv thread panic")
    {
        Some(NetworkPanic::Consequence)
    } else {
        None
    }
}

/// While alive, what this process writes to standard output goes to standard error: timely prints
/// its connection progress on standard output, where a sink's rows go.
pub(super) struct StdoutAside(Option<libc::c_int>);

impl StdoutAside {
    /// Points standard output at standard error.
    pub(super) fn new() -> StdoutAside {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: dup and dup2 only duplicate descriptors this process owns.
        let saved = unsafe { libc::dup(libc::STDOUT_FILENO) };
        if saved < 0 {
            return StdoutAside(None);
        }
        // SAFETY: as above.
        if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
            // SAFETY: `saved` is a descriptor this process just opened.
            unsafe { libc::close(saved) };
            return StdoutAside(None);
        }
        StdoutAside(Some(saved))
    }
}

impl Drop for StdoutAside {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        if let Some(saved) = self.0.take() {
            // SAFETY: `saved` is the descriptor `new` duplicated from standard output.
            unsafe {
                libc::dup2(saved, libc::STDOUT_FILENO);
                libc::close(saved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostfile_gives_the_first_addresses_and_refuses_bad_lines_with_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(
            &path,
            "# lab cluster\n10.0.0.1:2101\n\nnode-b:2101  # second\nnode-c:2101\n",
        )
        .unwrap();
        let cluster = Cluster::new(2, 1, Some(&path)).unwrap().unwrap();
        assert_eq!(cluster.addresses, ["10.0.0.1:2101", "node-b:2101"]);
        let error = Cluster::new(4, 0, Some(&path)).unwrap_err();
        assert!(
            error.contains("has 3 addresses, but --processes is 4"),
            "{error}"
        );
        std::fs::write(&path, "10.0.0.1:2101\nnode-b\n").unwrap();
        let error = Cluster::new(2, 0, Some(&path)).unwrap_err();
        assert!(
            error.ends_with(
                ":2: `node-b` is not an address: give host:port (port 1 to 65535), one per line"
            ),
            "{error}"
        );
    }

    #[test]
    fn process_counts_and_indices_out_of_range_are_refused() {
        assert!(Cluster::new(0, 0, None).is_err());
        assert!(Cluster::new(MAX_PROCESSES + 1, 0, None).is_err());
        let error = Cluster::new(2, 2, None).unwrap_err();
        assert_eq!(
            error,
            "the process index must be 0 to 1 for 2 processes, found 2"
        );
        assert!(Cluster::new(1, 0, Some(Path::new("hosts"))).is_err());
    }

    #[test]
    fn timely_network_panics_are_told_apart_from_bugs() {
        assert_eq!(
            network_panic("timely communication error: reading data: socket closed"),
            Some(NetworkPanic::ConnectionLost)
        );
        assert_eq!(
            network_panic("MergeQueue poisoned."),
            Some(NetworkPanic::Consequence)
        );
        assert_eq!(
            network_panic("Send thread panic: Any { .. }"),
            Some(NetworkPanic::Consequence)
        );
        assert_eq!(network_panic("index out of bounds"), None);
    }

    #[test]
    fn greetings_survive_the_wire_and_process_0_names_what_differs() {
        let mine = Greeting {
            process: 0,
            threads: 2,
            processes: 3,
            fingerprint: [7; 32],
        };
        let mut wire = Vec::new();
        let other = Greeting { process: 2, ..mine };
        other.write(&mut wire).unwrap();
        assert_eq!(Greeting::read(&mut wire.as_slice()).unwrap(), other);
        assert!(Greeting::read(&mut &b"GET / HTTP/1.1\r\n\r\n"[..]).is_err());

        assert_eq!(verdict(&mine, [other].iter()), Ok(()));
        let fewer = Greeting {
            process: 1,
            threads: 1,
            ..mine
        };
        let changed = Greeting {
            fingerprint: [8; 32],
            ..other
        };
        assert_eq!(
            verdict(&mine, [fewer, changed].iter()).unwrap_err(),
            "the processes were started with different worker counts: process 0 has -w 2, process 1 has -w 1; start every process with the same -w"
        );
        assert!(verdict(&mine, [changed].iter())
            .unwrap_err()
            .starts_with("process 0 and process(es) 2 were not given the same run"));
    }

    #[test]
    fn the_fingerprint_covers_the_pipeline_the_workers_and_the_taps() {
        let cluster = Cluster::new(2, 0, None).unwrap().unwrap();
        let base = cluster.fingerprint("a", 2);
        assert_eq!(base, cluster.fingerprint("a", 2));
        assert_ne!(base, cluster.fingerprint("b", 2));
        assert_ne!(base, cluster.fingerprint("a", 1));
        let serving = Cluster {
            leader_serves: true,
            ..cluster
        };
        assert_ne!(base, serving.fingerprint("a", 2));
    }
}
