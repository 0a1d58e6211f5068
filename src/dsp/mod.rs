//! Signal processing kernels used by operators: plain functions and state machines over `f64`
//! samples, free of dataflow concerns so they can be tested against reference implementations.

pub mod cpu;
pub mod dmer;
pub mod filter;
pub mod moments;
pub mod physio;
pub mod quality;
pub mod welch;
