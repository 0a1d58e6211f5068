//! Physiological feature operators: `heart_rate_variability` (ECG), `pulse` (PPG),
//! `eda_components` (EDA), `respiration`, `temperature_slope` and `activity` (accelerometer).
//!
//! Each one buffers its input in event-time windows ([`WindowPlan`]) and, when a window closes, runs
//! the NeuroKit2-equivalent kernels of [`crate::dsp::physio`] on that window's samples only: the
//! output at window end `e` depends on samples in `[e - window_s, e)` and nothing later, so results
//! are causal and equal NeuroKit2's `*_process` run on the same segment (not NeuroKit2 run once on
//! a whole recording, whose filters and detectors also see samples after the window; the difference
//! is measured in `integration-tests/neurokit_recordings.rs`). Every output row ends with quality
//! channels: `coverage`, `nonfinite` (NaN/Inf samples), `flat` and `clipped` (fractions). Non-finite
//! samples are bridged by linear interpolation when at most `max_invalid` of the window is bad;
//! otherwise the window's features are NaN. Only the buffer and the ECG high-pass's shared work
//! ([`crate::dsp::filter::SlidingFiltfilt`], equal to filtering each window alone, and used only for
//! windows whose samples are all finite) carry over between windows, so a burst of bad samples
//! never affects later windows.
//!
//! Feature channels (before the quality channels). A "per-sample mean" is NeuroKit2's per-sample
//! column averaged over the window's samples ([`crate::dsp::physio::rate`]): the period before each
//! beat interpolated over every sample (monotone cubic, held constant before the first and after
//! the last beat; NaN with 3 beats or fewer), as 60 / period.
//! - `heart_rate_variability`: `heart_rate` (bpm; per-sample mean of `ecg_process`'s `ECG_Rate`),
//!   `beats` (R-peaks after Kubios artefact correction, `info["ECG_R_Peaks"]`), `mean_nn`, `sdnn`,
//!   `rmssd` (ms), `pnn50` (%), `lf`, `hf`, `lf_hf` (`hrv_time` / `hrv_frequency` on those peaks).
//! - `pulse`: `pulse_rate` (bpm; per-sample mean of `ppg_process`'s `PPG_Rate`), `beats`,
//!   `mean_ibi`, `sdnn`, `rmssd` (ms).
//! - `eda_components`: `tonic_mean`, `phasic_std` (input unit), `scr_count`, then means over the
//!   window's SCRs of `eda_process`'s `SCR_Amplitude` (input unit), `SCR_RiseTime` (s),
//!   `SCR_Height` (`scr_height_mean`: phasic value at the peak, input unit) and `SCR_RecoveryTime`
//!   (`scr_recovery_time_mean`, s: from the peak to where the phasic signal has fallen to onset +
//!   half the amplitude, before the next SCR; SCRs that do not recover in the window are left out).
//! - `respiration`: `respiration_rate` (breaths/min; per-sample mean of `rsp_process`'s
//!   `RSP_Rate`, which NeuroKit2 takes from the breath troughs), `respiration_amplitude` (input
//!   unit; mean of `RSP_Amplitude`, each breath's peak minus preceding trough interpolated over
//!   every sample), `breaths` (inhalation peaks).
//! - `temperature_slope`: `temperature_slope` (input unit per minute), `temperature_mean`.
//! - `activity`: `magnitude_mean`, `magnitude_std`, `enmo` (g).
//!
//! ```toml
//! [operators.hrv]
//! kind = "heart_rate_variability"
//! inputs = ["sim.ecg"]
//! window_s = 60
//! hop_s = 10
//! ```

use std::borrow::Cow;

use super::feature_output::Rows;
use super::window::{Window, WindowPlan, WindowSpec, WINDOW_RANGE_S};
use super::{require_regular_numeric, Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::dsp::physio::{activity, ecg, eda, hrv, ppg, quality, rate, rsp, trend};
use crate::stream::{
    nanos_to_secs, Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema,
    FEATURE_KIND, QUALITY_KIND,
};

/// Which physiological features an operator computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysioFeature {
    /// ECG R-peaks (artefact-corrected, as `ecg_process`) -> heart rate and HRV time/frequency
    /// indices.
    HeartRateVariability,
    /// PPG beats -> pulse rate (as `ppg_process`) and inter-beat intervals.
    Pulse,
    /// EDA tonic/phasic split and skin conductance responses (as `eda_process`).
    EdaComponents,
    /// Respiration rate and amplitude (as `rsp_process`).
    Respiration,
    /// Skin temperature trend.
    TemperatureSlope,
    /// Accelerometer activity.
    Activity,
}

/// Output channels per feature: label, unit (`None` = the input's unit).
type Outputs = &'static [(&'static str, Option<&'static str>)];

impl PhysioFeature {
    /// The kinds, as written in pipeline files.
    pub const KINDS: [(&'static str, PhysioFeature); 6] = [
        ("activity", PhysioFeature::Activity),
        ("eda_components", PhysioFeature::EdaComponents),
        (
            "heart_rate_variability",
            PhysioFeature::HeartRateVariability,
        ),
        ("pulse", PhysioFeature::Pulse),
        ("respiration", PhysioFeature::Respiration),
        ("temperature_slope", PhysioFeature::TemperatureSlope),
    ];

    /// The kind name of this feature.
    pub fn kind(self) -> &'static str {
        Self::KINDS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(k, _)| k)
    }

    /// Input modality, channel count, lowest usable rate (Hz), shortest window (s), default window and hop (s).
    fn requirements(self) -> (Modality, usize, f64, f64, f64, f64) {
        match self {
            PhysioFeature::HeartRateVariability => (Modality::Ecg, 1, 100.0, 10.0, 60.0, 10.0),
            PhysioFeature::Pulse => (Modality::Ppg, 1, 20.0, 5.0, 30.0, 5.0),
            PhysioFeature::EdaComponents => (Modality::Eda, 1, 1.0, 10.0, 30.0, 5.0),
            PhysioFeature::Respiration => (Modality::Resp, 1, 8.0, 10.0, 30.0, 5.0),
            PhysioFeature::TemperatureSlope => (Modality::Temp, 1, 0.1, 1.0, 60.0, 10.0),
            PhysioFeature::Activity => (Modality::Accel, 3, 1.0, 0.5, 5.0, 1.0),
        }
    }

    fn outputs(self) -> Outputs {
        match self {
            PhysioFeature::HeartRateVariability => &[
                ("heart_rate", Some("bpm")),
                ("beats", Some("count")),
                ("mean_nn", Some("ms")),
                ("sdnn", Some("ms")),
                ("rmssd", Some("ms")),
                ("pnn50", Some("percent")),
                ("lf", Some("normalized PSD*Hz")),
                ("hf", Some("normalized PSD*Hz")),
                ("lf_hf", Some("ratio")),
            ],
            PhysioFeature::Pulse => &[
                ("pulse_rate", Some("bpm")),
                ("beats", Some("count")),
                ("mean_ibi", Some("ms")),
                ("sdnn", Some("ms")),
                ("rmssd", Some("ms")),
            ],
            PhysioFeature::EdaComponents => &[
                ("tonic_mean", None),
                ("phasic_std", None),
                ("scr_count", Some("count")),
                ("scr_amplitude_mean", None),
                ("scr_rise_time_mean", Some("s")),
                ("scr_height_mean", None),
                ("scr_recovery_time_mean", Some("s")),
            ],
            PhysioFeature::Respiration => &[
                ("respiration_rate", Some("breaths/min")),
                ("respiration_amplitude", None),
                ("breaths", Some("count")),
            ],
            PhysioFeature::TemperatureSlope => &[
                ("temperature_slope", Some("/min")),
                ("temperature_mean", None),
            ],
            PhysioFeature::Activity => &[
                ("magnitude_mean", None),
                ("magnitude_std", None),
                ("enmo", None),
            ],
        }
    }
}

/// Quality channels appended to every physiological feature row.
const QUALITY: [(&str, &str); 4] = [
    ("coverage", "fraction"),
    ("nonfinite", "count"),
    ("flat", "fraction"),
    ("clipped", "fraction"),
];

/// Options of a physiological feature operator.
#[derive(Clone, Debug, PartialEq)]
pub struct PhysioConfig {
    /// Which features.
    pub feature: PhysioFeature,
    /// Window length and hop.
    pub window: WindowSpec,
    /// Largest fraction of non-finite samples bridged by interpolation (more gives NaN features).
    pub max_invalid: f64,
    /// Runs of identical samples at least this long (s) count as flat line.
    pub flat_s: f64,
}

impl PhysioConfig {
    /// Reads `window_s`, `hop_s` (defaults per feature), `max_invalid` (0.1) and `flat_s` (1.0).
    pub fn parse(feature: PhysioFeature, options: &mut Options) -> Self {
        let (_, _, _, min_window, default_window, default_hop) = feature.requirements();
        let window = WindowSpec::parse(options, default_window, default_hop);
        let length_s = nanos_to_secs(window.length);
        if length_s < min_window {
            options.error_at(
                "window_s",
                format!(
                    "`{}` needs windows of at least {min_window} s, found window_s = {length_s}",
                    feature.kind()
                ),
                format!("use window_s >= {min_window}"),
            );
        }
        let max_invalid = match options.number("max_invalid") {
            Some(v) if (0.0..=1.0).contains(&v) => v,
            Some(v) => {
                options.error_at(
                    "max_invalid",
                    format!("max_invalid must be a fraction between 0 and 1, found {v}"),
                    "for example max_invalid = 0.1",
                );
                0.1
            }
            None => 0.1,
        };
        let flat_s = options.number_in("flat_s", 1.0, WINDOW_RANGE_S);
        PhysioConfig {
            feature,
            window,
            max_invalid,
            flat_s,
        }
    }

    /// Logic for one subject.
    pub fn instantiate(&self, input: &StreamSchema, output_id: u32, subject: &str) -> PhysioLogic {
        let rate = input.rate.hz().unwrap_or(1.0);
        PhysioLogic {
            config: self.clone(),
            rate,
            width: input.channel_count(),
            plan: WindowPlan::new(self.window, input.channel_count(), Some(rate)),
            output_id,
            subject: subject.to_string(),
            ecg_scratch: ecg::EcgScratch::default(),
        }
    }
}

impl Operator for PhysioConfig {
    fn window(&self) -> Option<WindowSpec> {
        Some(self.window)
    }

    /// Checks modality, channel count and rate; output: the feature channels then the quality channels.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let kind = self.feature.kind();
        let [input] = inputs else {
            return Err(PortError::needs_one_input(kind, inputs.len()));
        };
        let rate = require_regular_numeric(kind, input)?;
        let (modality, channels, min_rate, _, _, _) = self.feature.requirements();
        if input.modality != modality {
            return Err(PortError::input(
                0,
                format!(
                    "`{kind}` needs a {} stream, but `{}` is a {} stream",
                    modality.name(),
                    input.name,
                    input.modality.name()
                ),
                format!(
                    "connect a {} stream (LSL type {})",
                    modality.name(),
                    modality.lsl_type()
                ),
            ));
        }
        if input.channel_count() != channels {
            return Err(PortError::input(
                0,
                format!(
                    "`{kind}` needs {channels} channel(s), but `{}` has {} ({})",
                    input.name,
                    input.channel_count(),
                    input.labels().join(", ")
                ),
                "put a `select` operator in front to pick the channel(s)",
            ));
        }
        if rate < min_rate {
            return Err(PortError::input(
                0,
                format!(
                    "`{kind}` needs at least {min_rate} Hz, but `{}` is sampled at {rate} Hz",
                    input.name
                ),
                format!("use a stream sampled at {min_rate} Hz or more"),
            ));
        }
        let input_unit = input.channels[0].unit.clone();
        let mut out: Vec<Channel> = self
            .feature
            .outputs()
            .iter()
            .map(|(label, unit)| {
                let unit = match (self.feature, unit) {
                    (PhysioFeature::TemperatureSlope, Some(per)) => format!("{input_unit}{per}"),
                    (_, Some(u)) => u.to_string(),
                    (_, None) => input_unit.clone(),
                };
                Channel::new(*label, unit, FEATURE_KIND)
            })
            .collect();
        out.extend(
            QUALITY
                .iter()
                .map(|(l, u)| Channel::new(*l, *u, QUALITY_KIND)),
        );
        Ok(StreamSchema {
            name: name.to_string(),
            modality: Modality::Features,
            channels: out,
            format: ChannelFormat::Double64,
            rate: Rate::Regular(self.window.output_rate_hz()),
            subjects: input.subjects.clone(),
        })
    }

    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        _output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs[0], output_id, subject))
    }
}

/// Per-subject state of a physiological feature operator: only the buffered window.
pub struct PhysioLogic {
    config: PhysioConfig,
    rate: f64,
    width: usize,
    plan: WindowPlan,
    output_id: u32,
    subject: String,
    ecg_scratch: ecg::EcgScratch,
}

/// Features of one window (before the quality channels); NaN where they cannot be computed.
/// `bad` holds each channel's count of non-finite samples (from [`window_quality`]).
pub fn window_features(
    config: &PhysioConfig,
    fs: f64,
    width: usize,
    window: &Window<'_>,
    bad: &[usize],
    ecg_scratch: &mut ecg::EcgScratch,
) -> Vec<f64> {
    let count = config.feature.outputs().len();
    let nan = vec![f64::NAN; count];
    let columns: Vec<Cow<'_, [f64]>> = (0..width).map(|c| channel(window, width, c)).collect();
    let samples = window.times.len();
    if samples < 3
        || bad.iter().copied().max().unwrap_or(0) as f64 > config.max_invalid * samples as f64
    {
        return nan;
    }
    let Some(filled) = columns
        .into_iter()
        .zip(bad)
        .map(|(c, &bad)| match bad {
            0 => Some(c),
            _ => quality::fill_gaps(&c).map(Cow::Owned),
        })
        .collect::<Option<Vec<Cow<'_, [f64]>>>>()
    else {
        return nan;
    };
    let x = &filled[0];
    let features = match config.feature {
        PhysioFeature::HeartRateVariability => ecg::ecg_process_peaks(
            x,
            (bad[0] == 0).then_some(window.first_sample),
            fs,
            ecg_scratch,
        )
        .ok()
        .map(|peaks| {
            let time = hrv::hrv_time(&peaks, fs);
            let freq = hrv::hrv_frequency(&peaks, fs);
            vec![
                rate::mean_rate(&peaks, fs, x.len()),
                peaks.len() as f64,
                time.mean_nn,
                time.sdnn,
                time.rmssd,
                time.pnn50,
                freq.lf,
                freq.hf,
                freq.lf_hf,
            ]
        }),
        PhysioFeature::Pulse => ppg::ppg_clean(x, fs).ok().map(|clean| {
            let peaks = ppg::ppg_peaks(&clean, fs);
            let time = hrv::hrv_time(&peaks, fs);
            vec![
                rate::mean_rate(&peaks, fs, x.len()),
                peaks.len() as f64,
                time.mean_nn,
                time.sdnn,
                time.rmssd,
            ]
        }),
        PhysioFeature::EdaComponents => eda::eda_clean(x, fs)
            .and_then(|clean| eda::eda_phasic(&clean, fs))
            .ok()
            .map(|(tonic, phasic)| {
                let scrs = eda::scr_peaks(&phasic, fs);
                let mean = |v: &mut dyn Iterator<Item = f64>| {
                    let (sum, n) = v
                        .filter(|x| x.is_finite())
                        .fold((0.0, 0), |(s, n), x| (s + x, n + 1));
                    if n == 0 {
                        f64::NAN
                    } else {
                        sum / n as f64
                    }
                };
                let phasic_mean = mean(&mut phasic.iter().copied());
                let phasic_var = mean(&mut phasic.iter().map(|p| (p - phasic_mean).powi(2)));
                vec![
                    mean(&mut tonic.iter().copied()),
                    phasic_var.sqrt(),
                    scrs.len() as f64,
                    mean(&mut scrs.iter().map(|s| s.amplitude)),
                    mean(&mut scrs.iter().map(|s| s.rise_time)),
                    mean(&mut scrs.iter().map(|s| s.height)),
                    mean(&mut scrs.iter().map(|s| s.recovery_time)),
                ]
            }),
        PhysioFeature::Respiration => rsp::rsp_clean(x, fs).ok().map(|clean| {
            let (peaks, troughs) = rsp::rsp_peaks(&clean);
            vec![
                rsp::rsp_rate(&troughs, fs, clean.len()),
                rsp::rsp_amplitude(&clean, &peaks, &troughs),
                peaks.len() as f64,
            ]
        }),
        PhysioFeature::TemperatureSlope => {
            let times: Vec<f64> = window
                .times
                .iter()
                .map(|&t| nanos_to_secs(t - window.end))
                .collect();
            Some(vec![
                trend::slope(&times, x) * 60.0,
                x.iter().sum::<f64>() / x.len() as f64,
            ])
        }
        PhysioFeature::Activity => {
            let interleaved: Vec<f64> = (0..samples)
                .flat_map(|i| filled.iter().map(move |c| c[i]))
                .collect();
            let a = activity::activity(&interleaved);
            Some(vec![a.magnitude_mean, a.magnitude_std, a.enmo])
        }
    };
    features.unwrap_or(nan)
}

/// Channel `c` of a window's row-major samples (borrowed when the input has one channel).
fn channel<'a>(window: &Window<'a>, width: usize, c: usize) -> Cow<'a, [f64]> {
    if width == 1 {
        Cow::Borrowed(window.values)
    } else {
        Cow::Owned(
            window
                .values
                .iter()
                .skip(c)
                .step_by(width)
                .copied()
                .collect(),
        )
    }
}

/// Quality channels of one window (coverage, non-finite count, worst flat and clipped fractions)
/// and each channel's non-finite count.
pub fn window_quality(
    config: &PhysioConfig,
    fs: f64,
    width: usize,
    window: &Window<'_>,
) -> ([f64; 4], Vec<usize>) {
    let flat_run = (config.flat_s * fs).ceil().max(2.0) as usize;
    let mut row = [window.coverage, 0.0, 0.0, 0.0];
    let mut bad = Vec::with_capacity(width);
    for c in 0..width {
        let column = channel(window, width, c);
        let q = quality::assess(&column, flat_run);
        bad.push(q.nonfinite);
        row[1] += q.nonfinite as f64;
        row[2] = row[2].max(q.flat_fraction);
        row[3] = row[3].max(q.clipped_fraction);
    }
    (row, bad)
}

impl OperatorLogic for PhysioLogic {
    fn late_samples(&self) -> u64 {
        self.plan.late_samples()
    }

    fn on_batch(&mut self, _input: usize, batch: &Batch, _out: &mut Vec<Batch>) {
        self.plan.push(batch);
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        let (config, rate, width) = (&self.config, self.rate, self.width);
        let ecg_scratch = &mut self.ecg_scratch;
        let mut timestamps = Vec::new();
        let mut values = Vec::new();
        self.plan.close(frontier, |window| {
            let (quality, bad) = window_quality(config, rate, width, &window);
            values.extend(window_features(
                config,
                rate,
                width,
                &window,
                &bad,
                ecg_scratch,
            ));
            values.extend(quality);
            timestamps.push(window.end);
        });
        Rows { timestamps, values }.flush(self.output_id, &self.subject, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{sample_time, Values, NANOS_PER_SEC};

    /// NeuroKit2's simulated 60 s ECG at 700 Hz from the fixture.
    fn fixture_ecg() -> Vec<f64> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/physio/neurokit.json");
        let text = std::fs::read_to_string(path).expect("reading neurokit.json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        json["ecg"][0]["signal"]
            .as_str()
            .expect("signal")
            .split_whitespace()
            .map(|v| v.parse().expect("float"))
            .collect()
    }

    fn config() -> PhysioConfig {
        PhysioConfig {
            feature: PhysioFeature::HeartRateVariability,
            window: WindowSpec::new(20 * NANOS_PER_SEC, 10 * NANOS_PER_SEC),
            max_invalid: 0.1,
            flat_s: 1.0,
        }
    }

    /// Runs the operator over `signal` in 0.1 s batches and returns (end, row) per window.
    fn run(signal: &[f64]) -> Vec<(Nanos, Vec<f64>)> {
        let schema = StreamSchema {
            name: "ecg".into(),
            modality: Modality::Ecg,
            channels: vec![Channel::new("ECG", "mV", "ECG")],
            format: ChannelFormat::Float32,
            rate: Rate::Regular(700.0),
            subjects: vec![],
        };
        let output = config().output_schema("hrv", &[&schema]).expect("ports");
        let mut logic = config().instantiate(&schema, 1, "S01");
        let mut out = Vec::new();
        for (chunk, values) in signal.chunks(70).enumerate() {
            let times = (0..values.len())
                .map(|i| sample_time(0, (chunk * 70 + i) as u64, 700.0))
                .collect();
            let batch = Batch {
                stream: 0,
                subject: "S01".into(),
                timestamps: times,
                values: Values::Numeric(values.to_vec()),
            };
            logic.on_batch(0, &batch, &mut out);
            logic.on_frontier(
                sample_time(0, (chunk * 70 + values.len()) as u64, 700.0),
                &mut out,
            );
        }
        logic.on_frontier(Nanos::MAX, &mut out);
        let width = output.channel_count();
        out.iter()
            .flat_map(|b| {
                let Values::Numeric(v) = &b.values else {
                    panic!("numeric output")
                };
                b.timestamps
                    .iter()
                    .zip(v.chunks(width))
                    .map(|(t, row)| (*t, row.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn windows_equal_the_kernels_on_the_same_segment() {
        let signal = fixture_ecg();
        let rows = run(&signal);
        assert_eq!(
            rows.iter().map(|r| r.0 / NANOS_PER_SEC).collect::<Vec<_>>(),
            vec![20, 30, 40, 50, 60]
        );
        let (end, row) = &rows[2];
        let segment = &signal
            [(end / NANOS_PER_SEC - 20) as usize * 700..(end / NANOS_PER_SEC) as usize * 700];
        let mut scratch = ecg::EcgScratch::default();
        let peaks = ecg::ecg_process_peaks(segment, None, 700.0, &mut scratch).expect("peaks");
        assert_eq!(row[1], peaks.len() as f64);
        assert_eq!(row[4], hrv::hrv_time(&peaks, 700.0).rmssd);
        let rate = rate::mean_rate(&peaks, 700.0, segment.len());
        assert!(
            (row[0] - rate).abs() <= 1e-12 * rate,
            "{} vs {rate}",
            row[0]
        );
        assert!((row[0] - 70.0).abs() < 3.0, "heart rate {}", row[0]);
        assert_eq!(&row[9..], &[1.0, 0.0, 0.0, 0.0]);
    }

    /// A row as bit patterns, so NaN features (LF of a 20 s window) compare equal.
    fn bits(row: &(Nanos, Vec<f64>)) -> (Nanos, Vec<u64>) {
        (row.0, row.1.iter().map(|v| v.to_bits()).collect())
    }

    #[test]
    fn bad_samples_are_flagged_and_do_not_poison_later_windows() {
        let signal = fixture_ecg();
        let clean_rows = run(&signal);
        let mut bad = signal.clone();
        bad[7000..7700].fill(f64::NAN);
        bad[7700] = f64::INFINITY;
        bad[12000..13400].fill(0.25);
        let rows = run(&bad);
        assert_eq!(rows.len(), clean_rows.len());
        // The window [0, 20 s) holds the 1 s NaN burst (5% of it): bridged, flagged, still computed.
        assert_eq!(rows[0].1[10], 701.0);
        assert!(rows[0].1[0].is_finite(), "{:?}", rows[0].1);
        assert!(rows[0].1[11] >= 0.09, "flat fraction {:?}", rows[0].1);
        // Windows that start after the bad stretch equal the clean run exactly.
        for (a, b) in rows.iter().zip(&clean_rows).skip(2) {
            assert_eq!(bits(a), bits(b));
        }
        // A window that is mostly NaN gives NaN features, flagged, and the next one recovers.
        let mut burst = signal.clone();
        burst[14000..25000].fill(f64::NAN);
        let rows = run(&burst);
        assert!(rows[1].1[0].is_nan() && rows[1].1[10] == 7000.0);
        assert!(rows[2].1[0].is_nan() && rows[2].1[10] == 11000.0);
        assert_eq!(bits(&rows[4]), bits(&clean_rows[4]));
    }
}
