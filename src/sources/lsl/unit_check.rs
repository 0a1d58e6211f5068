//! The declared `unit` of an `lsl` source against the units a stream announces in
//! `desc/channels/channel/unit`: a stream in volts declared as microvolts would run with every
//! value 10^6 too small (band powers 10^12), so a known mismatch stops the run, or is converted
//! when the source says `on_unit_mismatch = "convert"`.
//!
//! Units are read by [`crate::units::Unit`]: heloflow's and LSL's spellings and MNE-LSL's bare
//! multipliers (`0` for volts on an `eeg` channel, as its `PlayerLSL` writes). A unit heloflow
//! cannot read that differs from the declared one is a warning: it cannot tell whether they agree.

use super::metadata::StreamMetadata;
use crate::stream::Modality;
use crate::units::Unit;

/// What an `lsl` source does when a stream's announced unit differs from the declared one by a
/// known factor (same quantity, another prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitPolicy {
    /// Refuse the stream (the default).
    Error,
    /// Multiply its values into the declared unit.
    Convert,
}

/// What the check found for one stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitCheck {
    /// Per-channel factors into the declared unit, when some channel needs one (`convert`).
    pub factors: Option<Vec<f64>>,
    /// Warnings: announced units heloflow cannot relate to the declared one.
    pub notes: Vec<String>,
}

/// Checks every channel's announced unit against `declared` (of a `modality` stream).
pub fn check_units(
    declared: &str,
    modality: Modality,
    meta: &StreamMetadata,
    policy: UnitPolicy,
) -> Result<UnitCheck, String> {
    let mut check = UnitCheck::default();
    let declared = declared.trim();
    if declared.is_empty() {
        return Ok(check);
    }
    let declared_type = modality.mne_type().unwrap_or(modality.lsl_type());
    let wanted = Unit::parse(declared, declared_type);
    let mut factors = vec![1.0; meta.channels.len()];
    let mut unknown: Vec<String> = Vec::new();
    for (channel, factor) in meta.channels.iter().zip(factors.iter_mut()) {
        let announced = channel.unit.trim();
        if announced.is_empty() || announced.eq_ignore_ascii_case(declared) {
            continue;
        }
        let kind = [channel.kind.as_str(), meta.kind.as_str(), declared_type]
            .into_iter()
            .find(|k| !k.trim().is_empty())
            .unwrap_or_default();
        let (Some(want), Some(got)) = (wanted, Unit::parse(announced, kind)) else {
            unknown.push(format!("{} \"{announced}\"", shown_label(&channel.label)));
            continue;
        };
        let spelled = if announced.parse::<i32>().is_ok() {
            format!(
                "desc/channels gives unit \"{announced}\" on a channel of type {kind}, MNE-LSL's multiplier for {}",
                got.name()
            )
        } else {
            format!("desc/channels gives unit \"{announced}\"")
        };
        let Some(to_declared) = got.factor_to(want) else {
            return Err(format!(
                "its channel {} is in {} ({spelled}), but the pipeline declares unit = \"{declared}\" ({}), another quantity: check that the source matches the right streams, or declare their unit",
                shown_label(&channel.label),
                got.name(),
                want.name()
            ));
        };
        if to_declared == 1.0 {
            continue;
        }
        match policy {
            UnitPolicy::Convert => *factor = to_declared,
            UnitPolicy::Error => {
                return Err(format!(
                    "its channel {} is in {} ({spelled}), but the pipeline declares unit = \"{declared}\": read as {declared}, every value would be off by a factor of {:e}; declare unit = \"{}\", or add on_unit_mismatch = \"convert\" to multiply its values by {to_declared:e} into {declared}",
                    shown_label(&channel.label),
                    got.name(),
                    1.0 / to_declared,
                    got.name()
                ));
            }
        }
    }
    if !unknown.is_empty() {
        check.notes.push(format!(
            "desc/channels gives unit(s) {} where the pipeline declares unit = \"{declared}\"; heloflow cannot tell whether they agree, so it takes the values as {declared}",
            unknown.join(", ")
        ));
    }
    if factors.iter().any(|f| *f != 1.0) {
        check.factors = Some(factors);
    }
    Ok(check)
}

/// A channel label for messages (`(unlabelled)` when the sender gave none).
fn shown_label(label: &str) -> String {
    if label.is_empty() {
        "(unlabelled)".to_string()
    } else {
        format!("\"{label}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Channel;

    fn stream(kind: &str, channels: &[(&str, &str, &str)]) -> StreamMetadata {
        StreamMetadata {
            name: "amp".into(),
            kind: kind.into(),
            source_id: "id".into(),
            hostname: "h".into(),
            channel_count: channels.len(),
            channels: channels
                .iter()
                .map(|(l, u, k)| Channel::new(*l, *u, *k))
                .collect(),
            format: "float32".into(),
            nominal_srate: 100.0,
        }
    }

    #[test]
    fn volts_declared_as_microvolts_stop_with_the_factor_and_the_fix() {
        let volts = stream("eeg", &[("C3", "0", "eeg"), ("C4", "0", "eeg")]);
        let error =
            check_units("microvolts", Modality::Eeg, &volts, UnitPolicy::Error).unwrap_err();
        assert!(error.contains("channel \"C3\" is in volts"), "{error}");
        assert!(error.contains("MNE-LSL's multiplier for volts"), "{error}");
        assert!(error.contains("off by a factor of 1e-6"), "{error}");
        assert!(error.contains("declare unit = \"volts\""), "{error}");
        assert!(error.contains("on_unit_mismatch = \"convert\""), "{error}");
        let plain = stream("EEG", &[("C3", "V", "EEG")]);
        assert!(check_units("uV", Modality::Eeg, &plain, UnitPolicy::Error).is_err());
    }

    #[test]
    fn convert_multiplies_each_channel_into_the_declared_unit() {
        let mixed = stream("EEG", &[("C3", "volts", ""), ("C4", "microvolts", "")]);
        let check = check_units("microvolts", Modality::Eeg, &mixed, UnitPolicy::Convert).unwrap();
        assert_eq!(check.factors, Some(vec![1e6, 1.0]));
        let millivolts = stream("ECG", &[("ECG", "uV", "ECG")]);
        let check = check_units("mV", Modality::Ecg, &millivolts, UnitPolicy::Convert).unwrap();
        assert_eq!(check.factors, Some(vec![1e-3]));
    }

    #[test]
    fn agreeing_spellings_and_silent_senders_pass() {
        for (unit, kind) in [
            ("uV", "EEG"),
            ("µV", "eeg"),
            ("microvolts", ""),
            ("MICROVOLTS", ""),
            ("-6", "eeg"),
            ("", "EEG"),
        ] {
            let meta = stream("EEG", &[("C3", unit, kind)]);
            let check = check_units("microvolts", Modality::Eeg, &meta, UnitPolicy::Error);
            assert_eq!(check, Ok(UnitCheck::default()), "{unit} {kind}");
        }
        let undeclared = stream("EEG", &[("C3", "V", "EEG")]);
        assert_eq!(
            check_units("", Modality::Eeg, &undeclared, UnitPolicy::Error),
            Ok(UnitCheck::default())
        );
    }

    #[test]
    fn other_quantities_are_refused_even_with_convert() {
        let eda = stream("GSR", &[("EDA", "uS", "GSR")]);
        let error =
            check_units("microvolts", Modality::Eeg, &eda, UnitPolicy::Convert).unwrap_err();
        assert!(error.contains("another quantity"), "{error}");
    }

    #[test]
    fn units_heloflow_cannot_read_are_a_warning() {
        let ppg = stream("PPG", &[("PPG", "a.u.", "PPG")]);
        let check = check_units("arbitrary", Modality::Ppg, &ppg, UnitPolicy::Error).unwrap();
        assert_eq!(check.factors, None);
        assert_eq!(check.notes.len(), 1);
        assert!(
            check.notes[0].contains("\"PPG\" \"a.u.\""),
            "{:?}",
            check.notes
        );
    }
}
