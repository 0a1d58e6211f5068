//! `band_power`: power of each channel in frequency bands over event-time sliding windows.
//!
//! Power is the Hann-windowed periodogram (mean removed, one-sided, density scaling as
//! `scipy.signal.periodogram`) summed over the band's bins `[low, high)` times the bin width.
//!
//! ```toml
//! [operators.eeg_bands]
//! kind = "band_power"
//! inputs = ["sim.eeg"]
//! window_s = 1.0
//! hop_s = 0.5
//! bands = { theta = [4, 8], alpha = [8, 14], beta = [14, 31] }
//! log = true
//! ```

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::feature_output::Rows;
use super::window::{Window, WindowPlan, WindowSpec};
use super::{require_regular_numeric, Operator, OperatorLogic, PortError};
use crate::config::document::Node;
use crate::config::options::Options;
use crate::stream::{
    Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, FEATURE_KIND, QUALITY_KIND,
};

/// The five EEG bands of the DMER feature definitions (Hz).
pub const DEFAULT_BANDS: [(&str, f64, f64); 5] = [
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 14.0),
    ("beta", 14.0, 31.0),
    ("gamma", 31.0, 49.0),
];

/// One frequency band.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// Name used in output channel labels.
    pub name: String,
    /// Lower edge, Hz (inclusive).
    pub low_hz: f64,
    /// Upper edge, Hz (exclusive).
    pub high_hz: f64,
}

/// Options of a `band_power` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct BandPowerConfig {
    /// Window length and hop.
    pub window: WindowSpec,
    /// Bands in output order.
    pub bands: Vec<Band>,
    /// Output log10 of the power instead of the power.
    pub log: bool,
}

impl BandPowerConfig {
    /// Reads `window_s` (default 1), `hop_s` (default 0.5), `bands` (default: the DMER bands), `log`.
    pub fn parse(options: &mut Options) -> Self {
        let window = WindowSpec::parse(options, 1.0, 0.5);
        let log = options.boolean("log", false);
        let bands = match options.raw("bands") {
            None => DEFAULT_BANDS
                .iter()
                .map(|(name, low, high)| Band {
                    name: name.to_string(),
                    low_hz: *low,
                    high_hz: *high,
                })
                .collect(),
            Some(node) => parse_bands(options, node),
        };
        BandPowerConfig { window, bands, log }
    }

    /// Logic for one subject.
    pub fn instantiate(
        &self,
        input: &StreamSchema,
        output_id: u32,
        _output: &StreamSchema,
        subject: &str,
    ) -> BandPowerLogic {
        let rate = input.rate.hz().unwrap_or(1.0);
        BandPowerLogic {
            config: self.clone(),
            rate,
            width: input.channel_count(),
            plan: WindowPlan::new(self.window, input.channel_count(), Some(rate)),
            planner: FftPlanner::new(),
            output_id,
            subject: subject.to_string(),
        }
    }
}

impl Operator for BandPowerConfig {
    fn window(&self) -> Option<WindowSpec> {
        Some(self.window)
    }

    /// Output: `<channel>_<band>` per channel and band, then `coverage`; one sample per hop.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let [input] = inputs else {
            return Err(PortError::needs_one_input("band_power", inputs.len()));
        };
        let rate = require_regular_numeric("band_power", input)?;
        let nyquist = rate / 2.0;
        if let Some(band) = self.bands.iter().find(|b| b.high_hz > nyquist) {
            return Err(PortError::option(
                "bands",
                format!(
                    "band `{}` reaches {} Hz, above the Nyquist frequency ({nyquist} Hz) of `{}` sampled at {rate} Hz",
                    band.name, band.high_hz, input.name
                ),
                format!(
                    "keep every band below {nyquist} Hz, or use an input sampled above {} Hz",
                    2.0 * band.high_hz
                ),
            ));
        }
        let resolution = 1e9 / self.window.length as f64;
        if let Some(band) = self
            .bands
            .iter()
            .find(|b| b.high_hz - b.low_hz < resolution)
        {
            return Err(PortError::option(
                "bands",
                format!(
                    "band `{}` is narrower than the {resolution} Hz frequency resolution of a {} s window",
                    band.name,
                    self.window.length as f64 / 1e9
                ),
                format!("widen the band or use window_s >= {}", 1.0 / (band.high_hz - band.low_hz)),
            ));
        }
        let unit = |c: &Channel| {
            if self.log {
                format!("log10({}^2)", c.unit)
            } else {
                format!("{}^2", c.unit)
            }
        };
        let mut channels: Vec<Channel> = input
            .channels
            .iter()
            .flat_map(|c| {
                self.bands.iter().map(move |b| {
                    Channel::new(format!("{}_{}", c.label, b.name), unit(c), FEATURE_KIND)
                })
            })
            .collect();
        channels.push(Channel::new("coverage", "fraction", QUALITY_KIND));
        Ok(StreamSchema {
            name: name.to_string(),
            modality: Modality::Features,
            channels,
            format: ChannelFormat::Double64,
            rate: Rate::Regular(self.window.output_rate_hz()),
            subjects: input.subjects.clone(),
        })
    }

    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs[0], output_id, output, subject))
    }
}

fn parse_bands(options: &mut Options, node: toml::Spanned<Node>) -> Vec<Band> {
    let shape_help = "write bands = { alpha = [8, 14], beta = [14, 31] } (Hz, low < high)";
    let Node::Table(entries) = node.get_ref() else {
        options.error_at_span(
            node.span(),
            "`bands` must be a table of [low, high] pairs",
            shape_help,
        );
        return Vec::new();
    };
    let mut bands = Vec::new();
    for (name, value) in entries {
        let edges: Option<Vec<f64>> = match value.get_ref() {
            Node::Array(items) => items
                .iter()
                .map(|item| match item.get_ref() {
                    Node::Int(i) => Some(*i as f64),
                    Node::Float(f) => Some(*f),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        match edges.as_deref() {
            Some(&[low, high]) if low >= 0.0 && low < high => bands.push(Band {
                name: name.get_ref().clone(),
                low_hz: low,
                high_hz: high,
            }),
            _ => options.error_at_span(
                value.span(),
                format!(
                    "band `{}` must be [low, high] in Hz with 0 <= low < high",
                    name.get_ref()
                ),
                shape_help,
            ),
        }
    }
    if bands.is_empty() && entries.is_empty() {
        options.error_at_span(node.span(), "`bands` is empty", shape_help);
    }
    bands
}

/// Per-subject state of `band_power`: the buffered window and cached FFT plans.
pub struct BandPowerLogic {
    config: BandPowerConfig,
    rate: f64,
    width: usize,
    plan: WindowPlan,
    planner: FftPlanner<f64>,
    output_id: u32,
    subject: String,
}

/// Band powers of every channel of a window, channel-major, appended to `row`.
fn band_powers(
    config: &BandPowerConfig,
    rate: f64,
    width: usize,
    fft: &Arc<dyn Fft<f64>>,
    window: &Window<'_>,
    row: &mut Vec<f64>,
) {
    let n = window.times.len();
    let taper: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect();
    let taper_power: f64 = taper.iter().map(|w| w * w).sum();
    let bin_hz = rate / n as f64;
    let mut buffer = vec![Complex::new(0.0, 0.0); n];
    for channel in 0..width {
        let column = window.values.iter().skip(channel).step_by(width);
        let finite: Vec<f64> = column.clone().copied().filter(|v| v.is_finite()).collect();
        if finite.len() < n || n < 2 {
            row.extend(std::iter::repeat_n(f64::NAN, config.bands.len()));
            continue;
        }
        let mean = finite.iter().sum::<f64>() / n as f64;
        for ((slot, value), w) in buffer.iter_mut().zip(column).zip(&taper) {
            *slot = Complex::new((value - mean) * w, 0.0);
        }
        fft.process(&mut buffer);
        for band in &config.bands {
            let mut power = 0.0;
            for (k, bin) in buffer.iter().enumerate().take(n / 2 + 1) {
                let freq = k as f64 * bin_hz;
                if freq >= band.low_hz && freq < band.high_hz {
                    let one_sided = if k == 0 || (n.is_multiple_of(2) && k == n / 2) {
                        1.0
                    } else {
                        2.0
                    };
                    power += one_sided * bin.norm_sqr() / (rate * taper_power) * bin_hz;
                }
            }
            row.push(if config.log { power.log10() } else { power });
        }
    }
}

impl OperatorLogic for BandPowerLogic {
    fn late_samples(&self) -> u64 {
        self.plan.late_samples()
    }

    fn on_batch(&mut self, _input: usize, batch: &Batch, _out: &mut Vec<Batch>) {
        self.plan.push(batch);
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        let (config, rate, width, planner) =
            (&self.config, self.rate, self.width, &mut self.planner);
        let mut timestamps = Vec::new();
        let mut values = Vec::new();
        self.plan.close(frontier, |window| {
            let fft = planner.plan_fft_forward(window.times.len().max(1));
            band_powers(config, rate, width, &fft, &window, &mut values);
            values.push(window.coverage);
            timestamps.push(window.end);
        });
        Rows { timestamps, values }.flush(self.output_id, &self.subject, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::NANOS_PER_SEC;

    #[test]
    fn sine_power_lands_in_its_band() {
        let config = BandPowerConfig {
            window: WindowSpec::new(NANOS_PER_SEC, NANOS_PER_SEC),
            bands: DEFAULT_BANDS
                .iter()
                .map(|(n, l, h)| Band {
                    name: n.to_string(),
                    low_hz: *l,
                    high_hz: *h,
                })
                .collect(),
            log: false,
        };
        let rate = 300.0;
        let times: Vec<Nanos> = (0..300).map(|i| i * NANOS_PER_SEC / 300).collect();
        let values: Vec<f64> = (0..300)
            .map(|i| 10.0 * (2.0 * std::f64::consts::PI * 10.0 * i as f64 / rate).sin())
            .collect();
        let window = Window {
            end: NANOS_PER_SEC,
            times: &times,
            values: &values,
            coverage: 1.0,
            first_sample: 0,
        };
        let fft = FftPlanner::new().plan_fft_forward(300);
        let mut row = Vec::new();
        band_powers(&config, rate, 1, &fft, &window, &mut row);
        // A sine of amplitude A has power A^2 / 2 = 50, all of it in alpha (8-14 Hz).
        assert!((row[2] - 50.0).abs() < 1.0, "{row:?}");
        assert!(row[0] < 0.01 && row[4] < 0.01, "{row:?}");
    }
}
