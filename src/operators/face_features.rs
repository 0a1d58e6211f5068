//! `face_features`: per-window mean and standard deviation of facial action-unit intensities.
//!
//! HeLo's video branch in DMER is a 768-value LBP-TOP descriptor of the face video; from an
//! action-unit stream (OpenFace `AUxx_r` channels) this operator gives the fixed-length behavioural
//! vector instead: `<AU>_mean` and `<AU>_std` (population std) of every `_r` channel over the frames
//! of the window that were tracked (`success` = 1 and `confidence` >= `min_confidence`, when those
//! channels exist). A window without a tracked frame gives NaN.
//!
//! ```toml
//! [operators.face]
//! kind = "face_features"
//! inputs = ["sim.face"]
//! window_s = 1.0
//! hop_s = 1.0
//! min_confidence = 0.8
//! ```

use super::feature_output::{
    feature_schema, parse_quality, push_quality, push_quality_channels, single_input, Rows,
};
use super::window::{WindowPlan, WindowSpec};
use super::{Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::dsp::quality::WindowQuality;
use crate::stream::{Batch, Channel, Modality, Nanos, StreamSchema, FEATURE_KIND};

/// Options of a `face_features` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceFeaturesConfig {
    /// Window length and hop.
    pub window: WindowSpec,
    /// Frames with a lower tracking confidence are left out.
    pub min_confidence: f64,
    /// Whether to append the quality channels.
    pub quality: bool,
}

/// Where the action units and the tracking channels sit in a face stream.
#[derive(Clone, Debug, PartialEq)]
struct FaceLayout {
    units: Vec<usize>,
    confidence: Option<usize>,
    success: Option<usize>,
}

fn layout(input: &StreamSchema) -> FaceLayout {
    let position = |label: &str| input.channels.iter().position(|c| c.label == label);
    FaceLayout {
        units: (0..input.channel_count())
            .filter(|&i| input.channels[i].label.ends_with("_r"))
            .collect(),
        confidence: position("confidence"),
        success: position("success"),
    }
}

impl FaceFeaturesConfig {
    /// Reads `window_s` (1), `hop_s` (1), `min_confidence` (0.8) and `quality` (true).
    pub fn parse(options: &mut Options) -> Self {
        let window = WindowSpec::parse(options, 1.0, 1.0);
        let min_confidence = options.number("min_confidence").unwrap_or(0.8);
        if !(0.0..=1.0).contains(&min_confidence) {
            options.error_at(
                "min_confidence",
                format!("min_confidence must be between 0 and 1, found {min_confidence}"),
                "for example min_confidence = 0.8",
            );
        }
        FaceFeaturesConfig {
            window,
            min_confidence,
            quality: parse_quality(options),
        }
    }

    /// Logic for one subject.
    pub fn instantiate(
        &self,
        input: &StreamSchema,
        output_id: u32,
        subject: &str,
    ) -> FaceFeaturesLogic {
        FaceFeaturesLogic {
            config: self.clone(),
            layout: layout(input),
            width: input.channel_count(),
            plan: WindowPlan::new(self.window, input.channel_count(), input.rate.hz()),
            output_id,
            subject: subject.to_string(),
        }
    }
}

impl Operator for FaceFeaturesConfig {
    fn window(&self) -> Option<WindowSpec> {
        Some(self.window)
    }

    /// Output: `<AU>_mean`, `<AU>_std` per action unit, then the quality channels.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let (input, _) = single_input(
            "face_features",
            inputs,
            Modality::Face,
            "connect a facial action-unit stream (OpenFace AUxx_r channels)",
        )?;
        let layout = layout(input);
        if layout.units.is_empty() {
            return Err(PortError::input(
                0,
                format!(
                    "`face_features` needs action-unit intensity channels (labels ending in `_r`), but `{}` has: {}",
                    input.name,
                    input.labels().join(", ")
                ),
                "connect an OpenFace-style stream with AU01_r, AU02_r, ... channels",
            ));
        }
        let mut channels = Vec::new();
        for &i in &layout.units {
            let c = &input.channels[i];
            channels.push(Channel::new(
                format!("{}_mean", c.label),
                &c.unit,
                FEATURE_KIND,
            ));
            channels.push(Channel::new(
                format!("{}_std", c.label),
                &c.unit,
                FEATURE_KIND,
            ));
        }
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

/// Per-subject state of `face_features`: the buffered window.
pub struct FaceFeaturesLogic {
    config: FaceFeaturesConfig,
    layout: FaceLayout,
    width: usize,
    plan: WindowPlan,
    output_id: u32,
    subject: String,
}

impl OperatorLogic for FaceFeaturesLogic {
    fn late_samples(&self) -> u64 {
        self.plan.late_samples()
    }

    fn on_batch(&mut self, _input: usize, batch: &Batch, _out: &mut Vec<Batch>) {
        self.plan.push(batch);
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        let mut rows = Rows::default();
        let (layout, width, config) = (&self.layout, self.width, &self.config);
        self.plan.close(frontier, |window| {
            let tracked: Vec<&[f64]> = window
                .values
                .chunks_exact(width)
                .filter(|frame| {
                    layout.success.is_none_or(|i| frame[i] == 1.0)
                        && layout
                            .confidence
                            .is_none_or(|i| frame[i] >= config.min_confidence)
                })
                .collect();
            let mut flags = WindowQuality::default();
            for &unit in &layout.units {
                let values: Vec<f64> = tracked.iter().map(|frame| frame[unit]).collect();
                flags.add_channel(values.iter().copied());
                let finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
                if finite.is_empty() {
                    rows.values.extend([f64::NAN, f64::NAN]);
                    continue;
                }
                let n = finite.len() as f64;
                let mean = finite.iter().sum::<f64>() / n;
                let var = finite.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                rows.values.extend([mean, var.sqrt()]);
            }
            let frames = window.values.len() / width.max(1);
            let coverage = if frames == 0 {
                0.0
            } else {
                window.coverage * tracked.len() as f64 / frames as f64
            };
            push_quality(&mut rows.values, config.quality, coverage, &flags);
            rows.timestamps.push(window.end);
        });
        rows.flush(self.output_id, &self.subject, out);
    }
}
