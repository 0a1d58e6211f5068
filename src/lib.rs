//! heloflow: streaming dataflow pipelines for physiological signals and live emotion distributions.
//!
//! Data flows one way: [`sources`] (simulator, later LSL and XDF) feed a timely-dataflow graph of
//! [`operators`] (filters, windows, features, models), whose results leave through [`sinks`]. A
//! [`pipeline`] file wires them together and is validated before anything runs; the [`runtime`]
//! executes it.

#![warn(missing_docs)]

pub mod config;
pub mod display;
pub mod dsp;
pub mod lsl_network;
pub mod metrics;
pub mod model;
pub mod operators;
pub mod origin;
pub mod pipeline;
pub mod record;
pub mod replay;
pub mod runtime;
pub mod server;
pub mod sinks;
pub mod sources;
pub mod stream;
pub mod telemetry;
pub mod terminal_view;
pub mod units;
pub mod xdf;
