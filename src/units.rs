//! Units of channel metadata as senders and readers spell them (`microvolts`, `uV`, `µS`, `degC`,
//! and MNE-LSL's bare unit multipliers `0`, `-6`), read as a quantity and a power of ten: an `lsl`
//! source checks a stream's announced unit against the declared one (and converts on request),
//! and the `lsl` sink writes signal units in the spelling MNE-LSL parses.
//!
//! ```
//! use heloflow::units::{Quantity, Unit};
//!
//! let declared = Unit::parse("microvolts", "EEG").unwrap();
//! let announced = Unit::parse("0", "eeg").unwrap(); // MNE-LSL's PlayerLSL: volts
//! assert_eq!(announced, Unit { quantity: Quantity::Volt, exponent: 0 });
//! assert_eq!(announced.factor_to(declared), Some(1e6));
//! assert_eq!(Unit::parse("uS", "GSR").unwrap().name(), "microsiemens");
//! ```

/// A physical quantity of a signal channel whose units heloflow reads: those MNE gives its signal
/// channel types (V for `eeg`, `ecg`, `emg`..., S for `gsr`, °C for `temperature`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// Electric potential (EEG, ECG, EMG, EOG).
    Volt,
    /// Electric conductance (electrodermal activity).
    Siemens,
    /// Temperature in degrees Celsius.
    Celsius,
}

impl Quantity {
    /// The quantity of channels of this type (an MNE channel type or an LSL content type, any
    /// case): what MNE-LSL's bare multipliers (`-6`) are multipliers of.
    pub fn of_channel_type(kind: &str) -> Option<Quantity> {
        match kind.trim().to_ascii_lowercase().as_str() {
            "eeg" | "ecg" | "ekg" | "emg" | "eog" | "seeg" | "ecog" | "dbs" => Some(Quantity::Volt),
            "gsr" | "eda" => Some(Quantity::Siemens),
            "temperature" | "temp" => Some(Quantity::Celsius),
            _ => None,
        }
    }

    /// The unit's name without a prefix.
    fn base_name(self) -> &'static str {
        match self {
            Quantity::Volt => "volts",
            Quantity::Siemens => "siemens",
            Quantity::Celsius => "degC",
        }
    }
}

/// A unit: `10^exponent` of its quantity's unit (microvolts: volts, -6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    /// What it measures.
    pub quantity: Quantity,
    /// The power of ten of the quantity's unit.
    pub exponent: i32,
}

/// SI prefixes heloflow reads in units: long name, symbols, exponent.
const PREFIXES: [(&str, &[&str], i32); 4] = [
    ("", &[""], 0),
    ("milli", &["m"], -3),
    ("micro", &["u", "µ", "μ"], -6),
    ("nano", &["n"], -9),
];

/// MNE's unit multipliers (`mne._fiff.constants._ch_unit_mul_named`), which MNE-LSL writes as
/// a channel's unit and reads back.
const MNE_MULTIPLIERS: [i32; 17] = [
    -18, -15, -12, -9, -6, -3, -2, -1, 0, 1, 2, 3, 6, 9, 12, 15, 18,
];

impl Unit {
    /// Reads a unit string: long names (`microvolts`, `millisiemens`), symbols (`uV`, `µV`,
    /// `mV`, `uS`, `µS`; volts in any case, as MNE-LSL reads them; siemens only with a capital
    /// `S`, since `ms` and `us` are also seconds), `degC`/`°C`/`celsius`, and MNE-LSL's bare
    /// multipliers (`0`, `-6`), which mean the unit of `channel_type`'s quantity. `None` for
    /// anything else (`probability`, `arbitrary`, an empty unit).
    pub fn parse(text: &str, channel_type: &str) -> Option<Unit> {
        let text = text.trim();
        if let Ok(exponent) = text.parse::<i32>() {
            let quantity = Quantity::of_channel_type(channel_type)?;
            return MNE_MULTIPLIERS
                .contains(&exponent)
                .then_some(Unit { quantity, exponent });
        }
        let lower = text.to_lowercase();
        if [
            "degc",
            "°c",
            "℃",
            "celsius",
            "degree celsius",
            "degrees celsius",
        ]
        .contains(&lower.as_str())
        {
            return Some(Unit {
                quantity: Quantity::Celsius,
                exponent: 0,
            });
        }
        for (long, symbols, exponent) in PREFIXES {
            let found = |quantity| Some(Unit { quantity, exponent });
            if lower == format!("{long}volts") || lower == format!("{long}volt") {
                return found(Quantity::Volt);
            }
            if lower == format!("{long}siemens") {
                return found(Quantity::Siemens);
            }
            for symbol in symbols {
                if lower == format!("{symbol}v") {
                    return found(Quantity::Volt);
                }
                if text == format!("{symbol}S") {
                    return found(Quantity::Siemens);
                }
            }
        }
        None
    }

    /// The factor that turns values in this unit into values in `to`, or `None` when they
    /// measure different quantities.
    pub fn factor_to(self, to: Unit) -> Option<f64> {
        (self.quantity == to.quantity).then(|| 10f64.powi(self.exponent - to.exponent))
    }

    /// The unit's long name (`microvolts`, `volts`, `microsiemens`, `degC`): the names MNE-LSL
    /// parses for voltage channels; a multiplier without a prefix name stays a multiplier.
    pub fn name(self) -> String {
        let base = self.quantity.base_name();
        if self.quantity == Quantity::Celsius && self.exponent == 0 {
            return base.to_string();
        }
        match PREFIXES.iter().find(|(_, _, e)| *e == self.exponent) {
            Some((long, _, _)) if self.quantity != Quantity::Celsius => format!("{long}{base}"),
            _ => format!("10^{} {base}", self.exponent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(quantity: Quantity, exponent: i32) -> Option<Unit> {
        Some(Unit { quantity, exponent })
    }

    #[test]
    fn heloflow_lsl_and_mne_spellings_are_read() {
        use Quantity::*;
        for (text, kind, want) in [
            ("microvolts", "", unit(Volt, -6)),
            ("uV", "", unit(Volt, -6)),
            ("µV", "", unit(Volt, -6)),
            ("μV", "", unit(Volt, -6)),
            ("UV", "", unit(Volt, -6)),
            ("millivolts", "", unit(Volt, -3)),
            ("mV", "", unit(Volt, -3)),
            ("V", "", unit(Volt, 0)),
            ("volt", "", unit(Volt, 0)),
            ("nanovolts", "", unit(Volt, -9)),
            ("uS", "", unit(Siemens, -6)),
            ("µS", "", unit(Siemens, -6)),
            ("microsiemens", "", unit(Siemens, -6)),
            ("S", "", unit(Siemens, 0)),
            ("degC", "", unit(Celsius, 0)),
            ("°C", "", unit(Celsius, 0)),
            ("0", "eeg", unit(Volt, 0)),
            ("-6", "EEG", unit(Volt, -6)),
            ("-6", "gsr", unit(Siemens, -6)),
            ("0", "temperature", unit(Celsius, 0)),
            (" microvolts ", "", unit(Volt, -6)),
        ] {
            assert_eq!(Unit::parse(text, kind), want, "{text:?} ({kind})");
        }
        for text in [
            "us",
            "ms",
            "s",
            "probability",
            "",
            "arbitrary",
            "0",
            "-5",
            "-6",
        ] {
            assert_eq!(Unit::parse(text, "misc"), None, "{text:?}");
        }
        assert_eq!(Unit::parse("-5", "eeg"), None);
    }

    #[test]
    fn factors_convert_between_prefixes_of_one_quantity() {
        let volts = Unit::parse("V", "").unwrap();
        let microvolts = Unit::parse("uV", "").unwrap();
        assert_eq!(volts.factor_to(microvolts), Some(1e6));
        assert_eq!(microvolts.factor_to(volts), Some(1e-6));
        assert_eq!(microvolts.factor_to(microvolts), Some(1.0));
        assert_eq!(volts.factor_to(Unit::parse("uS", "").unwrap()), None);
    }

    #[test]
    fn names_are_what_mne_lsl_parses_and_read_back() {
        for (text, name) in [
            ("uV", "microvolts"),
            ("mV", "millivolts"),
            ("V", "volts"),
            ("µS", "microsiemens"),
            ("°C", "degC"),
        ] {
            let unit = Unit::parse(text, "").unwrap();
            assert_eq!(unit.name(), name);
            assert_eq!(Unit::parse(&unit.name(), ""), Some(unit));
        }
        let odd = Unit::parse("-2", "eeg").unwrap();
        assert_eq!(odd.name(), "10^-2 volts");
    }
}
