//! XDF 1.0, the lab's recording format (LabRecorder writes it; pyxdf, MNE and EEGLAB read it):
//! the byte format, reading with pyxdf's clock synchronisation and dejittering, crash-safe
//! writing, file summaries and repair.
//!
//! This module knows nothing of pipelines or the command line: sources, sinks and commands
//! build on it.

pub mod bids;
pub mod chunks;
pub mod disk_sync;
pub mod error;
pub mod format;
pub mod header;
pub mod info;
pub mod reader;
pub mod repair;
pub mod samples;
pub mod sync;
pub mod writer;
