//! Models: manifests, ONNX Runtime sessions and the label-distribution metrics used to score them.
//!
//! A model is an ONNX file plus a JSON manifest that says what it expects (inputs in order, their
//! feature definitions and channel labels, window and hop), what it outputs (emotion labels) and how
//! it was trained and scored. Operators check pipelines against the manifest at validation time and
//! run the model through [`onnx::ModelSession`].

pub mod eval;
pub mod ldl;
pub mod manifest;
pub mod onnx;
