//! Cluster mode: one pipeline over several processes (or machines), through timely's own
//! process-to-process exchange.
//!
//! Process 0 leads: it runs the sources (so LSL discovery and file reading happen there), holds
//! every sink's writer and serves the dashboard. The other processes run workers, and the shares
//! of a source that splits by subject (the simulator) their workers own: timely sends them their
//! other subjects' batches over TCP and gathers their operators' rows back on worker 0,
//! so the output is byte-identical to a one-process run. Every process runs the same pipeline
//! file with the same `-w`; before the pipeline starts, the processes swap a fingerprint of what
//! they were given and all refuse to run on a mismatch.
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

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Inspect, ToStream};

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

/// A process index and the fingerprint it was given.
type Fingerprinted = (usize, [u8; 32]);

/// Swaps `fingerprint` between all processes (one worker of each sends it to every worker) and
/// says which processes were given something else. Every worker sees the same answer, so either
/// all build the pipeline or none does.
pub(super) fn agree(
    worker: &mut timely::worker::Worker,
    process: usize,
    threads: usize,
    fingerprint: [u8; 32],
) -> Result<(), String> {
    let received: Rc<RefCell<Vec<Fingerprinted>>> = Rc::default();
    let sink = received.clone();
    let sends = worker.index().is_multiple_of(threads);
    worker.dataflow::<u64, _, _>(|scope| {
        let mine = if sends {
            vec![(process, fingerprint)]
        } else {
            Vec::new()
        };
        mine.to_stream(scope)
            .container::<Vec<_>>()
            .broadcast()
            .inspect(move |entry| sink.borrow_mut().push(*entry));
    });
    while worker.step_or_park(Some(Duration::from_millis(20))) {}
    let mut received = received.borrow().clone();
    received.sort();
    let others: Vec<String> = received
        .iter()
        .filter(|(_, theirs)| *theirs != fingerprint)
        .map(|(p, _)| p.to_string())
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(format!(
        "process {process} and process(es) {} were not given the same run: every process needs the same pipeline file, the same -w, the same --processes, the same --serve (or none) and the same heloflow version",
        others.join(", ")
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
