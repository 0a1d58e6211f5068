//! Errors from filter design and filtering, each saying what is wrong and what would be valid.

use std::fmt;

/// Why a filter could not be designed or applied; `Display` explains the fix.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterError {
    /// The sample rate is not a finite positive number.
    InvalidSampleRate {
        /// The rejected sample rate in Hz.
        fs: f64,
    },
    /// The filter order is 0 or above [`super::MAX_ORDER`].
    InvalidOrder {
        /// The rejected order.
        order: usize,
    },
    /// The number of cutoff frequencies does not fit the band type.
    WrongCutoffCount {
        /// The band type being designed, e.g. "bandpass".
        band: &'static str,
        /// How many cutoffs were given.
        got: usize,
        /// How many cutoffs the band type needs.
        expected: usize,
    },
    /// A cutoff or centre frequency is not finite or not above 0 Hz.
    FrequencyNotPositive {
        /// The rejected frequency in Hz.
        freq_hz: f64,
    },
    /// A cutoff or centre frequency is at or above the Nyquist frequency.
    FrequencyAboveNyquist {
        /// The rejected frequency in Hz.
        freq_hz: f64,
        /// The stream's sample rate in Hz.
        fs: f64,
    },
    /// The band edges of a bandpass or bandstop filter are not strictly increasing.
    BandEdgesReversed {
        /// The first (expected lower) edge in Hz.
        low_hz: f64,
        /// The second (expected upper) edge in Hz.
        high_hz: f64,
    },
    /// The notch quality factor is not a finite positive number.
    InvalidQuality {
        /// The rejected quality factor.
        quality: f64,
    },
    /// The second-order sections cannot be used for filtering.
    InvalidSos {
        /// The offending section, if the problem is one row.
        section: Option<usize>,
        /// What is wrong with it and how to fix it.
        reason: String,
    },
    /// A filter was asked to run on zero channels.
    ZeroChannels,
    /// A chunk's length is not a whole number of multichannel frames.
    RaggedChunk {
        /// Number of values in the chunk.
        len: usize,
        /// Channels per frame.
        channels: usize,
    },
    /// A channel index is out of range.
    ChannelOutOfRange {
        /// The requested channel.
        channel: usize,
        /// How many channels the filter has.
        channels: usize,
    },
    /// A value that must be finite is NaN or infinite.
    NonFinite {
        /// What the value is, e.g. "signal sample 12".
        what: String,
    },
    /// The signal is too short for zero-phase filtering with scipy's default padding.
    SignalTooShort {
        /// Length of the given signal.
        len: usize,
        /// The odd-extension padding length scipy uses for this filter.
        padlen: usize,
    },
    /// Filter design reached a state that should be impossible; this is a bug worth reporting.
    Internal {
        /// What went wrong.
        detail: String,
    },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSampleRate { fs } => write!(
                f,
                "sample rate {fs} Hz is invalid; it must be a finite number above 0 Hz"
            ),
            Self::InvalidOrder { order } => write!(
                f,
                "filter order {order} is not supported; choose an order from 1 to {}",
                super::MAX_ORDER
            ),
            Self::WrongCutoffCount {
                band,
                got,
                expected,
            } => {
                let hint = if *expected == 1 {
                    "one cutoff frequency, e.g. [40.0]"
                } else {
                    "two band edges [low, high] in Hz, e.g. [0.5, 8.0]"
                };
                write!(
                    f,
                    "a {band} filter needs {expected} cutoff frequenc{} but {got} {} given; pass {hint}",
                    if *expected == 1 { "y" } else { "ies" },
                    if *got == 1 { "was" } else { "were" }
                )
            }
            Self::FrequencyNotPositive { freq_hz } => write!(
                f,
                "frequency {freq_hz} Hz is invalid; filter frequencies must be finite and above 0 Hz"
            ),
            Self::FrequencyAboveNyquist { freq_hz, fs } => {
                let nyquist = fs / 2.0;
                write!(
                    f,
                    "cutoff {freq_hz} Hz is at or above the Nyquist frequency {nyquist} Hz of a {fs} Hz stream; \
                     choose a cutoff below {nyquist} Hz"
                )
            }
            Self::BandEdgesReversed { low_hz, high_hz } => write!(
                f,
                "band edges [{low_hz}, {high_hz}] Hz are not increasing; the first edge must be strictly \
                 below the second, e.g. [{}, {}]",
                low_hz.min(*high_hz),
                low_hz.max(*high_hz)
            ),
            Self::InvalidQuality { quality } => write!(
                f,
                "notch quality factor {quality} is invalid; it must be a finite number above 0 \
                 (bandwidth = frequency / quality, 30 is typical for mains notches)"
            ),
            Self::InvalidSos { section, reason } => match section {
                Some(i) => write!(f, "second-order section {i} is invalid: {reason}"),
                None => write!(f, "second-order sections are invalid: {reason}"),
            },
            Self::ZeroChannels => write!(
                f,
                "a filter needs at least 1 channel, got 0; pass the stream's channel count"
            ),
            Self::RaggedChunk { len, channels } => write!(
                f,
                "chunk of {len} values is not a whole number of frames of {channels} channels; \
                 its length must be a multiple of {channels} (samples x channels, row-major)"
            ),
            Self::ChannelOutOfRange { channel, channels } => write!(
                f,
                "channel {channel} does not exist; this filter has {channels} channel(s), numbered 0 to {}",
                channels.saturating_sub(1)
            ),
            Self::NonFinite { what } => write!(
                f,
                "{what} is NaN or infinite; it must be finite (remove or interpolate gaps first)"
            ),
            Self::SignalTooShort { len, padlen } => write!(
                f,
                "signal of {len} samples is too short for zero-phase filtering with this filter: it pads \
                 {padlen} samples at each end, so it needs at least {} samples",
                padlen + 1
            ),
            Self::Internal { detail } => write!(
                f,
                "internal filter design error ({detail}); this is a bug, please report the design parameters"
            ),
        }
    }
}

impl std::error::Error for FilterError {}
