//! `fdatasync` on a thread of its own, so that the thread writing a recording never waits for the
//! disk: a live pipeline's XDF sink shares its dataflow worker with every other sink, and one sync
//! on a busy disk took seconds, holding back every LSL outlet of the run meanwhile.
//!
//! One sync runs at a time; a request while one runs is skipped (the running one started after
//! the writes it covers were made, the next one due covers the rest). A failure is reported at the
//! next request or wait.
//!
//! ```
//! use heloflow::xdf::disk_sync::DiskSync;
//!
//! let file = tempfile::tempfile().unwrap();
//! let mut sync = DiskSync::start(&file).unwrap();
//! sync.request().unwrap();
//! sync.wait().unwrap();
//! ```

use std::fs::File;
use std::io;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};

/// The syncing thread of one file.
pub struct DiskSync {
    requests: Option<Sender<()>>,
    results: Receiver<io::Result<()>>,
    running: bool,
    thread: Option<JoinHandle<()>>,
}

impl DiskSync {
    /// Starts the thread for `file` (on its own handle of the same open file).
    pub fn start(file: &File) -> io::Result<DiskSync> {
        let file = file.try_clone()?;
        let (requests, wanted) = bounded::<()>(1);
        let (done, results) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("xdf sync".to_string())
            .spawn(move || {
                for () in wanted {
                    if done.send(file.sync_data()).is_err() {
                        return;
                    }
                }
            })?;
        Ok(DiskSync {
            requests: Some(requests),
            results,
            running: false,
            thread: Some(thread),
        })
    }

    /// Starts a sync unless one is running; returns the error of a sync that failed since the
    /// last call.
    pub fn request(&mut self) -> io::Result<()> {
        if self.running {
            match self.results.try_recv() {
                Ok(result) => {
                    self.running = false;
                    result?;
                }
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => return Err(stopped()),
            }
        }
        self.requests
            .as_ref()
            .and_then(|r| r.send(()).ok())
            .ok_or_else(stopped)?;
        self.running = true;
        Ok(())
    }

    /// Waits for the running sync, if any; returns its result.
    pub fn wait(&mut self) -> io::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        self.results.recv().map_err(|_| stopped())?
    }
}

fn stopped() -> io::Error {
    io::Error::other("the thread synchronising the file stopped")
}

impl Drop for DiskSync {
    fn drop(&mut self) {
        self.requests = None;
        let _ = self.wait();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
