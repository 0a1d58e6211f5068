//! What can go wrong reading an XDF file: a fatal [`XdfError`] (not XDF at all, unreadable) or a
//! [`Damage`] record (a part of the file that was skipped, with the byte offset where it starts).
//!
//! ```
//! use heloflow::xdf::error::{Damage, XdfError};
//!
//! let error = XdfError::new(0, "not an XDF file (no `XDF:` magic at byte 0)");
//! assert_eq!(error.offset, 0);
//! let damage = Damage::new(1234, "chunk runs past the end of the file");
//! assert_eq!(damage.to_string(), "byte 1234: chunk runs past the end of the file");
//! ```

use std::fmt;

use serde::Serialize;

/// A file that cannot be read at all: the byte offset where reading failed and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdfError {
    /// Byte offset in the file where the problem was found.
    pub offset: u64,
    /// What is wrong, for people.
    pub message: String,
}

impl XdfError {
    /// An error at `offset`.
    pub fn new(offset: u64, message: impl Into<String>) -> Self {
        XdfError {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for XdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for XdfError {}

/// A damaged part of a file that was skipped while the rest was read: where it starts and what
/// was wrong (and what was skipped because of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damage {
    /// Byte offset of the damaged chunk (or of the first unreadable byte).
    pub offset: u64,
    /// What was wrong and what was skipped.
    pub message: String,
}

impl Damage {
    /// Damage found at `offset`.
    pub fn new(offset: u64, message: impl Into<String>) -> Self {
        Damage {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}: {}", self.offset, self.message)
    }
}
