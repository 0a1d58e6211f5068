//! BIDS-style recording names, as LabRecorder's BIDS template writes them:
//! `sub-P/ses-S/<modality>/sub-P_ses-S_task-T_run-R_<modality>.xdf` under a root directory.
//!
//! ```
//! use heloflow::xdf::bids::BidsName;
//!
//! let name = BidsName {
//!     root: "study".into(),
//!     subject: "P01".into(),
//!     session: Some("S1".into()),
//!     task: "music".into(),
//!     run: Some("2".into()),
//!     modality: "eeg".into(),
//! };
//! assert_eq!(
//!     name.path().unwrap().to_str().unwrap(),
//!     "study/sub-P01/ses-S1/eeg/sub-P01_ses-S1_task-music_run-2_eeg.xdf"
//! );
//! ```

use std::path::PathBuf;

/// The parts of a BIDS recording name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidsName {
    /// The dataset's root directory.
    pub root: String,
    /// Participant label (letters and digits).
    pub subject: String,
    /// Session label, if the study has sessions.
    pub session: Option<String>,
    /// Task label.
    pub task: String,
    /// Run index (digits), if the task is run more than once.
    pub run: Option<String>,
    /// Data type directory and suffix (`eeg`, `physio`, `beh`...).
    pub modality: String,
}

/// Checks a BIDS label: non-empty, ASCII letters and digits only (BIDS forbids `-`, `_`, `/`...).
fn check_label(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "the BIDS {what} label must be letters and digits only, found \"{value}\""
        ));
    }
    Ok(())
}

impl BidsName {
    /// Checks every part: labels alphanumeric, the run digits, the modality lower-case.
    pub fn check(&self) -> Result<(), String> {
        if self.root.is_empty() {
            return Err("the BIDS root directory must not be empty".to_string());
        }
        check_label("subject", &self.subject)?;
        if let Some(session) = &self.session {
            check_label("session", session)?;
        }
        check_label("task", &self.task)?;
        if let Some(run) = &self.run {
            if run.is_empty() || !run.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "the BIDS run must be a number (digits only), found \"{run}\""
                ));
            }
        }
        if self.modality.is_empty()
            || !self
                .modality
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(format!(
                "the BIDS modality must be lower-case letters and digits (eeg, physio, beh...), found \"{}\"",
                self.modality
            ));
        }
        Ok(())
    }

    /// The file's path under the root, or why the parts cannot name one.
    pub fn path(&self) -> Result<PathBuf, String> {
        self.check()?;
        let mut stem = format!("sub-{}", self.subject);
        let mut path = PathBuf::from(&self.root).join(format!("sub-{}", self.subject));
        if let Some(session) = &self.session {
            stem.push_str(&format!("_ses-{session}"));
            path.push(format!("ses-{session}"));
        }
        stem.push_str(&format!("_task-{}", self.task));
        if let Some(run) = &self.run {
            stem.push_str(&format!("_run-{run}"));
        }
        path.push(&self.modality);
        path.push(format!("{stem}_{}.xdf", self.modality));
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(subject: &str) -> BidsName {
        BidsName {
            root: "r".into(),
            subject: subject.into(),
            session: None,
            task: "rest".into(),
            run: None,
            modality: "physio".into(),
        }
    }

    #[test]
    fn optional_parts_are_left_out() {
        assert_eq!(
            name("P1").path().unwrap(),
            PathBuf::from("r/sub-P1/physio/sub-P1_task-rest_physio.xdf")
        );
        let mut bad = name("P1");
        bad.run = Some("two".into());
        assert!(bad.path().unwrap_err().contains("run must be a number"));
        bad.run = None;
        bad.modality = "EEG".into();
        assert!(bad.path().is_err());
    }

    proptest! {
        /// A label with anything but letters and digits could escape its directory or break the
        /// entity structure: it is always refused.
        #[test]
        fn labels_with_separators_are_refused(label in "[A-Za-z0-9]{0,4}[-_/. ][A-Za-z0-9/.]{0,4}") {
            prop_assert!(name(&label).path().is_err());
        }

        #[test]
        fn alphanumeric_labels_name_a_file_in_their_directory(label in "[A-Za-z0-9]{1,12}") {
            let path = name(&label).path().unwrap();
            prop_assert_eq!(path.parent().unwrap(), PathBuf::from(format!("r/sub-{label}/physio")));
        }
    }
}
