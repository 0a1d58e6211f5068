//! The dashboard's assets, compiled into the binary (the dashboard page lands with its own
//! change; until then no asset is served).

/// An embedded asset by exact name, with its content type.
pub fn asset(_name: &str) -> Option<(&'static [u8], &'static str)> {
    None
}
