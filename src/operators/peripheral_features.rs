//! `gsr_features` and `ppg_features`: DMER's statistical GSR (28) and PPG (27) features.
//!
//! Follows `perifeaext.py` of the DMER dataset (see [`crate::dsp::dmer`]): on 5 s windows sliding by
//! 1 s, the median, mean, std, min, max, min-ratio and max-ratio of the signal, of its first and of
//! its second difference, then the median, mean, std, min, max and range of its FFT, then (GSR only)
//! the mean Welch power spectral density. PPG is first band-passed 0.5-8 Hz (order-3 Butterworth).
//! DMER band-passes each clip offline with `filtfilt`; here `bandpass = "causal"` (default) filters
//! live with state kept across chunks, and `bandpass = "none"` takes a signal already filtered
//! upstream (a `filter` operator with `zero_phase = true` reproduces DMER offline).
//! A window holding a NaN or infinite sample gives NaN features and is flagged in `nonfinite`.
//!
//! ```toml
//! [operators.gsr]
//! kind = "gsr_features"
//! inputs = ["sim.eda"]      # one channel at 4 Hz
//!
//! [operators.ppg]
//! kind = "ppg_features"
//! inputs = ["sim.ppg"]      # one channel at 100 Hz
//! bandpass = "causal"
//! ```

use super::feature_output::{
    feature_schema, parse_quality, push_quality, push_quality_channels, require_one_channel,
    require_rate, single_input, Rows,
};
use super::window::{WindowPlan, WindowSpec};
use super::{Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::dsp::dmer::{peripheral_features, Spectra, SPECTRUM_NAMES, STAT_NAMES};
use crate::dsp::filter::{butter, BandType, SosFilter};
use crate::dsp::quality::WindowQuality;
use crate::stream::{Batch, Channel, Modality, Nanos, StreamSchema, Values, FEATURE_KIND};

/// Which DMER peripheral signal the operator computes features of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeripheralSignal {
    /// Skin conductance at 4 Hz: 28 features.
    Gsr,
    /// Photoplethysmogram at 100 Hz: 27 features after a 0.5-8 Hz band-pass.
    Ppg,
}

impl PeripheralSignal {
    fn kind(self) -> &'static str {
        match self {
            PeripheralSignal::Gsr => "gsr_features",
            PeripheralSignal::Ppg => "ppg_features",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            PeripheralSignal::Gsr => "gsr",
            PeripheralSignal::Ppg => "ppg",
        }
    }

    fn modality(self) -> Modality {
        match self {
            PeripheralSignal::Gsr => Modality::Eda,
            PeripheralSignal::Ppg => Modality::Ppg,
        }
    }

    /// The sampling rate DMER's definition is written for.
    pub fn rate_hz(self) -> f64 {
        match self {
            PeripheralSignal::Gsr => 4.0,
            PeripheralSignal::Ppg => 100.0,
        }
    }

    /// Feature labels in output order (28 for GSR, 27 for PPG).
    pub fn labels(self) -> Vec<String> {
        let prefix = self.prefix();
        let mut labels = Vec::new();
        for part in ["", "d1_", "d2_"] {
            for stat in STAT_NAMES {
                labels.push(format!("{prefix}_{part}{stat}"));
            }
        }
        for stat in SPECTRUM_NAMES {
            labels.push(format!("{prefix}_fft_{stat}"));
        }
        if self == PeripheralSignal::Gsr {
            labels.push(format!("{prefix}_psd_mean"));
        }
        labels
    }
}

/// Options of a `gsr_features` or `ppg_features` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct PeripheralConfig {
    /// GSR or PPG.
    pub signal: PeripheralSignal,
    /// Window length and hop (DMER: 5 s sliding by 1 s).
    pub window: WindowSpec,
    /// PPG only: band-pass the input causally (true) or take it as already filtered (false).
    pub causal_bandpass: bool,
    /// Whether to append the quality channels.
    pub quality: bool,
}

impl PeripheralConfig {
    /// Reads `window_s` (5), `hop_s` (1), `quality` (true) and, for PPG, `bandpass` (`causal` or `none`).
    pub fn parse(signal: PeripheralSignal, options: &mut Options) -> Self {
        let window = WindowSpec::parse(options, 5.0, 1.0);
        let causal_bandpass = signal == PeripheralSignal::Ppg
            && options.choice("bandpass", "causal", &["causal", "none"]) == "causal";
        PeripheralConfig {
            signal,
            window,
            causal_bandpass,
            quality: parse_quality(options),
        }
    }

    /// Logic for one subject.
    pub fn instantiate(&self, output_id: u32, subject: &str) -> PeripheralLogic {
        let rate = self.signal.rate_hz();
        let bandpass = self.causal_bandpass.then(|| {
            let sos = butter(3, &[0.5, 8.0], BandType::Bandpass, rate)
                .expect("0.5-8 Hz is a valid band at 100 Hz");
            SosFilter::new(&sos, 1).expect("one channel")
        });
        PeripheralLogic {
            config: self.clone(),
            bandpass,
            plan: WindowPlan::new(self.window, 1, Some(rate)),
            spectra: Spectra::new(),
            output_id,
            subject: subject.to_string(),
        }
    }
}

impl Operator for PeripheralConfig {
    fn window(&self) -> Option<WindowSpec> {
        Some(self.window)
    }

    /// Output: the DMER feature labels (`gsr_median` ... `gsr_psd_mean`), then the quality channels.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let kind = self.signal.kind();
        let (input, rate) = single_input(
            kind,
            inputs,
            self.signal.modality(),
            &format!("connect a {} stream", self.signal.modality().name()),
        )?;
        require_rate(kind, input, rate, self.signal.rate_hz())?;
        require_one_channel(kind, input)?;
        let unit = input.channels[0].unit.clone();
        let mut channels: Vec<Channel> = self
            .signal
            .labels()
            .into_iter()
            .map(|label| {
                let unit = if label.ends_with("ratio") {
                    "fraction".to_string()
                } else {
                    unit.clone()
                };
                Channel::new(label, unit, FEATURE_KIND)
            })
            .collect();
        push_quality_channels(&mut channels, self.quality);
        Ok(feature_schema(
            name,
            input,
            channels,
            self.window.output_rate_hz(),
        ))
    }

    fn logic(
        &self,
        _inputs: &[&StreamSchema],
        output_id: u32,
        _output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(output_id, subject))
    }
}

/// Per-subject state of `gsr_features`/`ppg_features`: band-pass state, buffered window, FFT plans.
pub struct PeripheralLogic {
    config: PeripheralConfig,
    bandpass: Option<SosFilter>,
    plan: WindowPlan,
    spectra: Spectra,
    output_id: u32,
    subject: String,
}

impl OperatorLogic for PeripheralLogic {
    fn late_samples(&self) -> u64 {
        self.plan.late_samples()
    }

    fn on_batch(&mut self, _input: usize, batch: &Batch, _out: &mut Vec<Batch>) {
        match (&mut self.bandpass, &batch.values) {
            (Some(filter), Values::Numeric(values)) => {
                let mut filtered = values.clone();
                if filter.process(&mut filtered).is_ok() {
                    self.plan.push(&Batch {
                        values: Values::Numeric(filtered),
                        ..batch.clone()
                    });
                }
            }
            _ => self.plan.push(batch),
        }
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        let mut rows = Rows::default();
        let (spectra, config) = (&mut self.spectra, &self.config);
        let welch_fs = (config.signal == PeripheralSignal::Gsr).then_some(config.signal.rate_hz());
        let width = config.signal.labels().len();
        self.plan.close(frontier, |window| {
            let mut flags = WindowQuality::default();
            flags.add_channel(window.values.iter().copied());
            if window.values.len() < 3 || flags.nonfinite > 0 {
                rows.values.extend(std::iter::repeat_n(f64::NAN, width));
            } else {
                peripheral_features(spectra, window.values, welch_fs, &mut rows.values);
            }
            push_quality(&mut rows.values, config.quality, window.coverage, &flags);
            rows.timestamps.push(window.end);
        });
        rows.flush(self.output_id, &self.subject, out);
    }
}
