//! `band_power`: power of each channel in frequency bands over event-time sliding windows.
//!
//! Power is a one-sided power spectral density (Hann window, density scaling) summed over the
//! band's bins `low <= f < high` times the bin width. `method = "periodogram"` (default) takes
//! the periodogram of the whole window, as `scipy.signal.periodogram(window="hann")`;
//! `method = "welch"` averages segments of `nperseg` samples overlapping by `noverlap`, as
//! `scipy.signal.welch`. `detrend = "constant"` (default) removes the mean of the window or of
//! each segment, `"none"` keeps it. Welch segments that consecutive windows share are
//! transformed once.
//!
//! ```toml
//! [operators.eeg_bands]
//! kind = "band_power"
//! inputs = ["sim.eeg"]
//! window_s = 1.0
//! hop_s = 0.5
//! bands = { theta = [4, 8], alpha = [8, 14], beta = [14, 31] }
//! log = true
//!
//! [operators.welch_bands]          # scipy.signal.welch(win, fs=700, nperseg=700) band sums
//! kind = "band_power"
//! inputs = ["amp.eeg"]
//! window_s = 10
//! hop_s = 1
//! method = "welch"
//! nperseg = 700                    # noverlap defaults to nperseg / 2
//! bands = { delta = [1, 4], theta = [4, 8], alpha = [8, 13], beta = [13, 30], gamma = [30, 40] }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::feature_output::Rows;
use super::window::{Window, WindowPlan, WindowSpec};
use super::{require_regular_numeric, Operator, OperatorLogic, PortError};
use crate::config::document::Node;
use crate::config::options::Options;
use crate::dsp::welch::{segment_starts, SegmentBands, NPERSEG_RANGE};
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

/// How a window's spectrum is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// One periodogram of the whole window.
    Periodogram,
    /// Welch's average of segment periodograms.
    Welch {
        /// Samples per segment.
        nperseg: usize,
        /// Samples shared by consecutive segments (less than `nperseg`).
        noverlap: usize,
    },
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
    /// Periodogram or Welch.
    pub method: Method,
    /// Remove the mean of each transformed stretch (scipy's `detrend="constant"`).
    pub detrend: bool,
}

impl BandPowerConfig {
    /// Reads `window_s` (default 1), `hop_s` (default 0.5), `bands` (default: the DMER bands),
    /// `log`, `method` (periodogram or welch), `nperseg` (256), `noverlap` (nperseg / 2) and
    /// `detrend` (constant or none).
    pub fn parse(options: &mut Options) -> Self {
        let window = WindowSpec::parse(options, 1.0, 0.5);
        let log = options.boolean("log", false);
        let welch = options.choice("method", "periodogram", &["periodogram", "welch"]) == "welch";
        let detrend = options.choice("detrend", "constant", &["constant", "none"]) == "constant";
        if !welch {
            for key in ["nperseg", "noverlap"] {
                if options.value_span(key).is_some() {
                    options.error_at(
                        key,
                        format!("`{key}` applies only to method = \"welch\""),
                        "add method = \"welch\", or remove it",
                    );
                }
            }
        }
        let nperseg = options.integer("nperseg", 256, NPERSEG_RANGE) as usize;
        let noverlap =
            options.integer("noverlap", (nperseg / 2) as i64, 0..nperseg as i64) as usize;
        let method = if welch {
            Method::Welch { nperseg, noverlap }
        } else {
            Method::Periodogram
        };
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
        BandPowerConfig {
            window,
            bands,
            log,
            method,
            detrend,
        }
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
        let width = input.channel_count();
        let welch = match self.method {
            Method::Periodogram => None,
            Method::Welch { nperseg, noverlap } => {
                let edges: Vec<(f64, f64)> =
                    self.bands.iter().map(|b| (b.low_hz, b.high_hz)).collect();
                Some(WelchSegments {
                    transform: SegmentBands::new(rate, nperseg, &edges, self.detrend),
                    noverlap,
                    sums: BTreeMap::new(),
                })
            }
        };
        BandPowerLogic {
            config: self.clone(),
            rate,
            width,
            plan: WindowPlan::new(self.window, width, Some(rate)),
            planner: FftPlanner::new(),
            welch,
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
        let resolution = match self.method {
            Method::Periodogram => 1e9 / self.window.length as f64,
            Method::Welch { nperseg, .. } => {
                let window_samples = (self.window.length as f64 / 1e9 * rate).round();
                if nperseg as f64 > window_samples {
                    return Err(PortError::option(
                        "nperseg",
                        format!(
                            "nperseg = {nperseg} is longer than a {} s window of `{}` ({window_samples} samples at {rate} Hz)",
                            self.window.length as f64 / 1e9,
                            input.name
                        ),
                        format!("use nperseg <= {window_samples}, or a longer window_s"),
                    ));
                }
                rate / nperseg as f64
            }
        };
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
    welch: Option<WelchSegments>,
    output_id: u32,
    subject: String,
}

/// Welch state: the segment transform and the band sums of the segments the next window may
/// share, keyed by the position of their first sample.
struct WelchSegments {
    transform: SegmentBands,
    noverlap: usize,
    sums: BTreeMap<u64, Vec<f64>>,
}

impl WelchSegments {
    /// Band powers of every channel of `window` (channel-major) appended to `row`.
    fn band_powers(&mut self, bands: usize, width: usize, window: &Window<'_>, row: &mut Vec<f64>) {
        let nperseg = self.transform.nperseg();
        let starts: Vec<usize> =
            segment_starts(window.times.len(), nperseg, self.noverlap).collect();
        self.sums = self.sums.split_off(&window.first_sample);
        let at = row.len();
        row.resize(at + width * bands, 0.0);
        if starts.is_empty() {
            row[at..].fill(f64::NAN);
            return;
        }
        for &start in &starts {
            let key = window.first_sample + start as u64;
            let transform = &mut self.transform;
            let sums = self.sums.entry(key).or_insert_with(|| {
                let mut sums = vec![0.0; width * bands];
                for (channel, out) in sums.chunks_exact_mut(bands).enumerate() {
                    transform.segment(&window.values[start * width..], width, channel, out);
                }
                sums
            });
            row[at..]
                .iter_mut()
                .zip(sums.iter())
                .for_each(|(r, s)| *r += s);
        }
        let scale = self.transform.bin_width() / starts.len() as f64;
        row[at..].iter_mut().for_each(|r| *r *= scale);
    }
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
        let mean = if config.detrend {
            finite.iter().sum::<f64>() / n as f64
        } else {
            0.0
        };
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
        let (config, rate, width, planner, welch) = (
            &self.config,
            self.rate,
            self.width,
            &mut self.planner,
            &mut self.welch,
        );
        let mut timestamps = Vec::new();
        let mut values = Vec::new();
        self.plan.close(frontier, |window| {
            let at = values.len();
            match welch {
                Some(welch) => welch.band_powers(config.bands.len(), width, &window, &mut values),
                None => {
                    let fft = planner.plan_fft_forward(window.times.len().max(1));
                    band_powers(config, rate, width, &fft, &window, &mut values);
                }
            }
            if config.log && welch.is_some() {
                values[at..].iter_mut().for_each(|v| *v = v.log10());
            }
            values.push(window.coverage);
            timestamps.push(window.end);
        });
        Rows { timestamps, values }.flush(self.output_id, &self.subject, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Values, NANOS_PER_SEC};

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
            method: Method::Periodogram,
            detrend: true,
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

    /// Welch windows computed from the segments cached across windows equal each window's
    /// estimate computed from scratch, whether or not the hop is a multiple of the segment step.
    #[test]
    fn welch_windows_reuse_shared_segments_without_changing_a_value() {
        let rate = 100.0;
        let width = 2;
        let samples = 1000;
        let signal: Vec<f64> = (0..samples * width)
            .map(|i| ((i * 7919 % 1013) as f64 / 101.0).sin() * 3.0 + (i % width) as f64)
            .collect();
        let times: Vec<Nanos> = (0..samples as i64)
            .map(|i| i * NANOS_PER_SEC / 100)
            .collect();
        let bands = vec![
            Band {
                name: "low".into(),
                low_hz: 1.0,
                high_hz: 6.0,
            },
            Band {
                name: "high".into(),
                low_hz: 6.0,
                high_hz: 30.0,
            },
        ];
        let edges: Vec<(f64, f64)> = bands.iter().map(|b| (b.low_hz, b.high_hz)).collect();
        for noverlap in [25, 10, 0] {
            let config = BandPowerConfig {
                window: WindowSpec::new(2 * NANOS_PER_SEC, NANOS_PER_SEC / 2),
                bands: bands.clone(),
                log: false,
                method: Method::Welch {
                    nperseg: 50,
                    noverlap,
                },
                detrend: true,
            };
            let schema = StreamSchema {
                name: "x".into(),
                modality: Modality::Eeg,
                channels: (0..width)
                    .map(|c| Channel::new(format!("C{c}"), "uV", "EEG"))
                    .collect(),
                format: ChannelFormat::Float32,
                rate: Rate::Regular(rate),
                subjects: vec![],
            };
            let mut logic = config.instantiate(&schema, 0, &schema, "S");
            let mut out = Vec::new();
            for chunk in (0..samples).step_by(7) {
                let end = (chunk + 7).min(samples);
                let batch = Batch {
                    stream: 0,
                    subject: "S".into(),
                    timestamps: times[chunk..end].to_vec(),
                    values: Values::Numeric(signal[chunk * width..end * width].to_vec()),
                };
                logic.on_batch(0, &batch, &mut out);
                logic.on_frontier(times[end - 1], &mut out);
            }
            let rows: Vec<(Nanos, Vec<f64>)> = out
                .iter()
                .flat_map(|b| {
                    let Values::Numeric(v) = &b.values else {
                        unreachable!()
                    };
                    b.timestamps
                        .iter()
                        .copied()
                        .zip(v.chunks(width * 2 + 1).map(<[f64]>::to_vec))
                        .collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(rows.len(), 16, "noverlap {noverlap}");
            let mut fresh = SegmentBands::new(rate, 50, &edges, true);
            for (end, row) in rows {
                let last = (end / (NANOS_PER_SEC / 100)) as usize;
                let window = &signal[(last - 200) * width..last * width];
                let starts: Vec<usize> = segment_starts(200, 50, noverlap).collect();
                for channel in 0..width {
                    let mut total = [0.0; 2];
                    for &start in &starts {
                        let mut one = [0.0; 2];
                        fresh.segment(&window[start * width..], width, channel, &mut one);
                        total.iter_mut().zip(one).for_each(|(t, o)| *t += o);
                    }
                    for band in 0..2 {
                        let expected = total[band] / starts.len() as f64 * fresh.bin_width();
                        let got = row[channel * 2 + band];
                        assert!(
                            (got - expected).abs() <= 1e-12 * expected.abs(),
                            "noverlap {noverlap}, end {end}, channel {channel}, band {band}: {got} vs {expected}"
                        );
                    }
                }
            }
        }
    }
}
