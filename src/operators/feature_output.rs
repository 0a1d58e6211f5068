//! What the feature operators share: the optional quality channels, the port checks on modality,
//! rate and channel count, and the batch of finished rows.

use super::PortError;
use crate::config::options::Options;
use crate::dsp::quality::{WindowQuality, QUALITY_LABELS};
use crate::stream::{
    Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values, QUALITY_KIND,
};

/// Reads `quality` (default true): whether to append `coverage`, `nonfinite`, `flat`, `clipped`.
pub fn parse_quality(options: &mut Options) -> bool {
    options.boolean("quality", true)
}

/// Appends the quality channels to `channels` when `quality` is on.
pub fn push_quality_channels(channels: &mut Vec<Channel>, quality: bool) {
    if quality {
        channels.push(Channel::new("coverage", "fraction", QUALITY_KIND));
        channels.push(Channel::new(QUALITY_LABELS[0], "samples", QUALITY_KIND));
        channels.push(Channel::new(QUALITY_LABELS[1], "channels", QUALITY_KIND));
        channels.push(Channel::new(QUALITY_LABELS[2], "fraction", QUALITY_KIND));
    }
}

/// Appends a window's quality values (coverage first) to `row` when `quality` is on.
pub fn push_quality(row: &mut Vec<f64>, quality: bool, coverage: f64, flags: &WindowQuality) {
    if quality {
        row.push(coverage);
        row.extend(flags.values());
    }
}

/// The single input of a feature operator, checked for modality and numeric regular sampling.
pub fn single_input<'a>(
    kind: &str,
    inputs: &[&'a StreamSchema],
    modality: Modality,
    help: &str,
) -> Result<(&'a StreamSchema, f64), PortError> {
    let [input] = inputs else {
        return Err(PortError::needs_one_input(kind, inputs.len()));
    };
    if input.modality != modality {
        return Err(PortError::input(
            0,
            format!(
                "`{kind}` computes {} features, but `{}` is a {} stream",
                modality.name(),
                input.name,
                input.modality.name()
            ),
            help.to_string(),
        ));
    }
    let rate = super::require_regular_numeric(kind, input)?;
    Ok((input, rate))
}

/// Rejects an input whose rate differs from the one the feature definition is written for.
pub fn require_rate(
    kind: &str,
    input: &StreamSchema,
    rate: f64,
    wanted: f64,
) -> Result<(), PortError> {
    if (rate - wanted).abs() > 1e-9 * wanted {
        return Err(PortError::input(
            0,
            format!(
                "`{kind}` follows the DMER definition at {wanted} Hz, but `{}` is sampled at {rate} Hz",
                input.name
            ),
            format!("resample it first: kind = \"resample\", rate_hz = {wanted}"),
        ));
    }
    Ok(())
}

/// Rejects an input with more than one channel.
pub fn require_one_channel(kind: &str, input: &StreamSchema) -> Result<(), PortError> {
    if input.channel_count() != 1 {
        return Err(PortError::input(
            0,
            format!(
                "`{kind}` takes a single-channel signal, but `{}` has {} channels ({})",
                input.name,
                input.channel_count(),
                input.labels().join(", ")
            ),
            "pick one channel first with kind = \"select\"",
        ));
    }
    Ok(())
}

/// The schema of a feature stream: `channels` at one sample per hop, features modality.
pub fn feature_schema(
    name: &str,
    input: &StreamSchema,
    channels: Vec<Channel>,
    rate_hz: f64,
) -> StreamSchema {
    StreamSchema {
        name: name.to_string(),
        modality: Modality::Features,
        channels,
        format: ChannelFormat::Double64,
        rate: Rate::Regular(rate_hz),
        subjects: input.subjects.clone(),
    }
}

/// Rows of one output batch being assembled.
#[derive(Default)]
pub struct Rows {
    /// Window ends.
    pub timestamps: Vec<Nanos>,
    /// Row-major values.
    pub values: Vec<f64>,
}

impl Rows {
    /// Moves the rows into `out` as one batch of stream `output_id` (nothing when empty).
    pub fn flush(self, output_id: u32, subject: &str, out: &mut Vec<Batch>) {
        if !self.timestamps.is_empty() {
            out.push(Batch {
                stream: output_id,
                subject: subject.to_string(),
                timestamps: self.timestamps,
                values: Values::Numeric(self.values),
            });
        }
    }
}
