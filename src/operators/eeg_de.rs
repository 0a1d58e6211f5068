//! `eeg_de`: DMER's EEG differential entropy per channel in five bands (HeLo's 90 EEG inputs).
//!
//! Follows `fea4eeg.py` of the DMER dataset (see [`crate::dsp::dmer`]): symmetric Hann taper, FFT
//! of 256 points (a 300-sample window is cropped), mean band power over bins
//! `floor(lo/fs*256) ..= floor(hi/fs*256)`, DE = `0.5 ln(power) + 0.5 ln(2 pi e / round(fs/256))`.
//! Output channels are `<channel>_de_<band>`, channel-major, as DMER's feature files.
//!
//! ```toml
//! [operators.eeg_de]
//! kind = "eeg_de"
//! inputs = ["sim.eeg"]     # EEG, 18 channels at 300 Hz for HeLo
//! window_s = 1.0           # DMER: 1 s windows, not overlapping
//! hop_s = 1.0
//! quality = false          # true appends coverage, nonfinite, flat, clipped
//! ```

use super::feature_output::{
    feature_schema, parse_quality, push_quality, push_quality_channels, single_input, Rows,
};
use super::window::{WindowPlan, WindowSpec};
use super::{Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::dsp::dmer::{Spectra, EEG_BANDS, EEG_NFFT};
use crate::dsp::quality::WindowQuality;
use crate::stream::{Batch, Channel, Modality, Nanos, StreamSchema, FEATURE_KIND};

/// Options of an `eeg_de` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct EegDeConfig {
    /// Window length and hop (DMER: 1 s and 1 s).
    pub window: WindowSpec,
    /// Whether to append the quality channels.
    pub quality: bool,
}

impl EegDeConfig {
    /// Reads `window_s` (default 1), `hop_s` (default 1) and `quality` (default true).
    pub fn parse(options: &mut Options) -> Self {
        EegDeConfig {
            window: WindowSpec::parse(options, 1.0, 1.0),
            quality: parse_quality(options),
        }
    }

    /// Logic for one subject.
    pub fn instantiate(&self, input: &StreamSchema, output_id: u32, subject: &str) -> EegDeLogic {
        let rate = input.rate.hz().unwrap_or(300.0);
        EegDeLogic {
            quality: self.quality,
            rate,
            width: input.channel_count(),
            plan: WindowPlan::new(self.window, input.channel_count(), Some(rate)),
            spectra: Spectra::new(),
            column: Vec::new(),
            output_id,
            subject: subject.to_string(),
        }
    }
}

impl Operator for EegDeConfig {
    fn window(&self) -> Option<WindowSpec> {
        Some(self.window)
    }

    /// Output: `<channel>_de_<band>` per channel and band, then the quality channels.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let (input, rate) = single_input(
            "eeg_de",
            inputs,
            Modality::Eeg,
            "connect an EEG stream (HeLo: 18 channels at 300 Hz)",
        )?;
        let top = EEG_BANDS[EEG_BANDS.len() - 1].2;
        if rate <= 2.0 * top || (rate / EEG_NFFT as f64).round() < 1.0 {
            return Err(PortError::input(
                0,
                format!(
                    "`eeg_de` needs a rate above {} Hz (its top band reaches {top} Hz and its 256-point FFT needs round(rate / 256) >= 1), but `{}` is sampled at {rate} Hz",
                    2.0 * top,
                    input.name
                ),
                "use EEG sampled at 128 Hz or more (DMER: 300 Hz)",
            ));
        }
        let mut channels: Vec<Channel> = input
            .channels
            .iter()
            .flat_map(|c| {
                EEG_BANDS.iter().map(move |(band, _, _)| {
                    Channel::new(format!("{}_de_{band}", c.label), "nats", FEATURE_KIND)
                })
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
        inputs: &[&StreamSchema],
        output_id: u32,
        _output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs[0], output_id, subject))
    }
}

/// Per-subject state of `eeg_de`: the buffered window and FFT plans.
pub struct EegDeLogic {
    quality: bool,
    rate: f64,
    width: usize,
    plan: WindowPlan,
    spectra: Spectra,
    column: Vec<f64>,
    output_id: u32,
    subject: String,
}

impl OperatorLogic for EegDeLogic {
    fn late_samples(&self) -> u64 {
        self.plan.late_samples()
    }

    fn on_batch(&mut self, _input: usize, batch: &Batch, _out: &mut Vec<Batch>) {
        self.plan.push(batch);
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        let mut rows = Rows::default();
        let bands: Vec<(f64, f64)> = EEG_BANDS.iter().map(|b| (b.1, b.2)).collect();
        let (spectra, column, width, rate, quality) = (
            &mut self.spectra,
            &mut self.column,
            self.width,
            self.rate,
            self.quality,
        );
        self.plan.close(frontier, |window| {
            let mut flags = WindowQuality::default();
            for channel in 0..width {
                column.clear();
                column.extend(window.values.iter().skip(channel).step_by(width));
                flags.add_channel(column.iter().copied());
                if column.is_empty() || column.iter().any(|v| !v.is_finite()) {
                    rows.values.extend([f64::NAN; 5]);
                } else {
                    spectra.differential_entropy(column, rate, EEG_NFFT, &bands, &mut rows.values);
                }
            }
            push_quality(&mut rows.values, quality, window.coverage, &flags);
            rows.timestamps.push(window.end);
        });
        rows.flush(self.output_id, &self.subject, out);
    }
}
