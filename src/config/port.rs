//! Port errors: a component's inputs checked against its options, once upstream schemas are known.

/// A problem with a component's inputs, found once the upstream schemas are known.
#[derive(Clone, Debug, PartialEq)]
pub struct PortError {
    /// Where the problem is.
    pub site: PortSite,
    /// What is wrong.
    pub message: String,
    /// What would be valid.
    pub help: String,
}

/// The part of a component a [`PortError`] points at.
#[derive(Clone, Debug, PartialEq)]
pub enum PortSite {
    /// The input at this position in `inputs`.
    Input(usize),
    /// The `inputs` list as a whole (wrong count).
    Inputs,
    /// The named option.
    Option(&'static str),
}

impl PortError {
    /// A problem with input number `index`.
    pub fn input(index: usize, message: impl Into<String>, help: impl Into<String>) -> Self {
        PortError {
            site: PortSite::Input(index),
            message: message.into(),
            help: help.into(),
        }
    }

    /// A problem with an option, seen against the inputs.
    pub fn option(key: &'static str, message: impl Into<String>, help: impl Into<String>) -> Self {
        PortError {
            site: PortSite::Option(key),
            message: message.into(),
            help: help.into(),
        }
    }

    /// The operator takes exactly one input and got `count`.
    pub fn needs_one_input(kind: &str, count: usize) -> Self {
        PortError {
            site: PortSite::Inputs,
            message: format!("`{kind}` takes exactly one input, found {count}"),
            help: "use one operator per input stream".to_string(),
        }
    }
}
