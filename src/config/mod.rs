//! The option and diagnostic layer every component builds on: pipeline text with spans, typed
//! option reading, located diagnostics and port errors.
//!
//! It sits below the components (sources, operators, sinks) and knows none of them; `pipeline`
//! sits above them and wires them together.

pub mod diagnostic;
pub mod document;
pub mod options;
mod port;
pub mod registry;
pub mod source_text;

pub use port::{PortError, PortSite};
