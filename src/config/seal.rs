//! The `[seal]` section: how this node's seal is kept. Absent: Shamir shares only. With
//! `[seal.pkcs11]`: the unseal key is wrapped by an AES key in an HSM, nodes unseal themselves
//! at start, and the shares issued at init are recovery shares.
//!
//! ```toml
//! [seal.pkcs11]
//! lib = "/usr/lib/softhsm/libsofthsm2.so"
//! token_label = "strongroom"      # or: slot = 0
//! pin_env = "STRONGROOM_HSM_PIN"  # or: pin_file = "/etc/strongroom/hsm-pin"
//! key_label = "strongroom-unseal"
//! ```
//!
//! The PIN itself is never in this file: [`Pkcs11Config::settings`] reads it from the named
//! environment variable or file when the server starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ConfigError;
use crate::seal::pkcs11::{Pkcs11Settings, TokenSelector};

/// The `[seal]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SealSection {
    /// HSM auto-unseal (`[seal.pkcs11]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<Pkcs11Config>,
}

impl SealSection {
    pub(super) fn is_empty(&self) -> bool {
        self.pkcs11.is_none()
    }
}

/// The `[seal.pkcs11]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (a shared library).
    pub lib: PathBuf,
    /// The slot id holding the token (exactly one of `slot` and `token_label`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// The token's label (exactly one of `slot` and `token_label`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_label: Option<String>,
    /// Name of the environment variable holding the user PIN (exactly one of `pin_env` and
    /// `pin_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_env: Option<String>,
    /// File holding the user PIN (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// `CKA_LABEL` of the AES key that wraps the unseal key.
    pub key_label: String,
}

impl Pkcs11Config {
    /// Checks the section's rules (without touching the HSM or reading the PIN).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| Err(ConfigError::Invalid(format!("seal.pkcs11: {message}")));
        if !self.lib.is_absolute() {
            return invalid("lib must be an absolute path to the PKCS#11 module");
        }
        match (&self.slot, &self.token_label) {
            (Some(_), Some(_)) | (None, None) => {
                return invalid("set exactly one of slot and token_label");
            }
            (None, Some(label)) if label.is_empty() || label.len() > 32 => {
                return invalid("token_label must be 1-32 characters (PKCS#11's limit)");
            }
            (Some(slot), None) if i64::try_from(*slot).is_err() => {
                return invalid("slot must be at most i64::MAX (a TOML integer)");
            }
            _ => {}
        }
        match (&self.pin_env, &self.pin_file) {
            (Some(_), Some(_)) | (None, None) => {
                return invalid(
                    "set exactly one of pin_env and pin_file (the PIN itself is never in the config)",
                );
            }
            (Some(name), None) if name.is_empty() || name.contains('=') => {
                return invalid("pin_env must name an environment variable");
            }
            (None, Some(path)) if !path.is_absolute() => {
                return invalid("pin_file must be an absolute path");
            }
            _ => {}
        }
        if self.key_label.is_empty() {
            return invalid("key_label must not be empty");
        }
        Ok(())
    }

    /// The settings for [`crate::seal::pkcs11::Hsm::open`], with the PIN read from its
    /// environment variable or file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if the variable is unset or empty, or the file unreadable or
    /// empty. The message names the variable or file, never its content.
    pub fn settings(&self) -> Result<Pkcs11Settings, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid(format!("seal.pkcs11: {message}"));
        let pin = match (&self.pin_env, &self.pin_file) {
            (Some(name), _) => Zeroizing::new(std::env::var(name).map_err(|_| {
                invalid(format!(
                    "environment variable {name} (pin_env) is not set or not UTF-8"
                ))
            })?),
            (None, Some(path)) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|err| {
                    invalid(format!(
                        "cannot read pin_file {}: {}",
                        path.display(),
                        err.kind()
                    ))
                })?);
                Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            (None, None) => return Err(invalid("no PIN source configured".into())),
        };
        if pin.is_empty() {
            return Err(invalid("the PIN is empty".into()));
        }
        let token = match (&self.slot, &self.token_label) {
            (Some(slot), _) => TokenSelector::Slot(*slot),
            (None, Some(label)) => TokenSelector::Label(label.clone()),
            (None, None) => return Err(invalid("no token configured".into())),
        };
        Ok(Pkcs11Settings {
            lib: self.lib.clone(),
            token,
            pin,
            key_label: self.key_label.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Pkcs11Config {
        Pkcs11Config {
            lib: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            slot: None,
            token_label: Some("strongroom".into()),
            pin_env: None,
            pin_file: Some(PathBuf::from("/etc/pin")),
            key_label: "unseal".into(),
        }
    }

    #[test]
    fn validation_rules() {
        assert!(base().validate().is_ok());
        let cases: Vec<(Pkcs11Config, &str)> = vec![
            (
                Pkcs11Config {
                    lib: "lib.so".into(),
                    ..base()
                },
                "absolute path to the PKCS#11 module",
            ),
            (
                Pkcs11Config {
                    slot: Some(1),
                    ..base()
                },
                "exactly one of slot and token_label",
            ),
            (
                Pkcs11Config {
                    token_label: None,
                    ..base()
                },
                "exactly one of slot and token_label",
            ),
            (
                Pkcs11Config {
                    token_label: Some("x".repeat(33)),
                    ..base()
                },
                "1-32 characters",
            ),
            (
                Pkcs11Config {
                    pin_env: Some("PIN".into()),
                    ..base()
                },
                "exactly one of pin_env and pin_file",
            ),
            (
                Pkcs11Config {
                    pin_file: None,
                    ..base()
                },
                "exactly one of pin_env and pin_file",
            ),
            (
                Pkcs11Config {
                    pin_file: Some("pin".into()),
                    ..base()
                },
                "pin_file must be an absolute path",
            ),
            (
                Pkcs11Config {
                    key_label: String::new(),
                    ..base()
                },
                "key_label must not be empty",
            ),
        ];
        for (config, expected) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
            assert!(
                err.starts_with("invalid configuration: seal.pkcs11: "),
                "{err}"
            );
        }
    }

    #[test]
    fn pin_from_file_trims_the_newline_and_never_appears_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "s3cret-pin\n").unwrap();
        let config = Pkcs11Config {
            pin_file: Some(path.clone()),
            ..base()
        };
        let settings = config.settings().unwrap();
        assert_eq!(settings.pin.as_str(), "s3cret-pin");
        assert_eq!(settings.token, TokenSelector::Label("strongroom".into()));
        assert!(!format!("{settings:?}").contains("s3cret-pin"));

        std::fs::write(&path, "\n").unwrap();
        let err = config.settings().unwrap_err().to_string();
        assert!(err.contains("the PIN is empty"), "{err}");
        let missing = Pkcs11Config {
            pin_file: Some(dir.path().join("absent")),
            ..base()
        };
        let err = missing.settings().unwrap_err().to_string();
        assert!(
            err.contains("cannot read pin_file") && err.contains("absent"),
            "{err}"
        );
        let unset = Pkcs11Config {
            pin_env: Some("STRONGROOM_TEST_PIN_THAT_IS_NEVER_SET".into()),
            pin_file: None,
            ..base()
        };
        let err = unset.settings().unwrap_err().to_string();
        assert!(
            err.contains("STRONGROOM_TEST_PIN_THAT_IS_NEVER_SET"),
            "{err}"
        );
    }
}
