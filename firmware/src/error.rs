//! The firmware's one error type.

use core::fmt;

use aqm_core::StoreError;
use embedded_storage::nor_flash::NorFlashErrorKind;

/// Everything the firmware can fail with. Each refusal changes nothing; a flash failure in the
/// middle of a step is repaired on the next call (or at the next boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A refusal of the core's rules (unknown key, burned key, vault full, bad length, ...).
    Core(aqm_core::Error),
    /// The flash driver failed (or the emulated power was cut).
    Flash(NorFlashErrorKind),
    /// The flash holds data the vault cannot read: `what` says which structure.
    Corrupt {
        /// Which structure.
        what: &'static str,
    },
    /// The flash holds a vault of another format version (`found`); this firmware reads only
    /// `supported`. Nothing was written; older formats are refused, not migrated.
    FlashFormat {
        /// The format version in the flash (1 for a vault that predates the format record).
        found: u32,
        /// The format version this firmware reads ([`crate::FLASH_FORMAT`]).
        supported: u32,
    },
    /// The flash layout does not fit the device (ranges not page aligned, too small, ...).
    BadLayout {
        /// What is wrong with it.
        what: &'static str,
    },
    /// The vault was used again from inside one of its own callbacks.
    Busy,
    /// The device refused a request (host side), or the refusal the device sends back.
    Device(crate::protocol::DeviceError),
    /// The serial link failed.
    Io(embedded_io::ErrorKind),
    /// The other side broke the protocol: `what` says how.
    Protocol {
        /// What was wrong.
        what: &'static str,
    },
}

impl From<aqm_core::Error> for Error {
    fn from(e: aqm_core::Error) -> Self {
        Error::Core(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Core(e) => fmt::Display::fmt(e, f),
            Error::Flash(kind) => {
                write!(f, "flash failure ({kind:?}): power-cycle the device; the vault repairs itself")
            }
            Error::Corrupt { what } => {
                write!(f, "the flash holds an unreadable {what}: the vault cannot trust it; re-provision the device")
            }
            Error::FlashFormat { found, supported } => write!(
                f,
                "the flash holds vault format v{found}, this firmware reads only format v{supported}: \
                 v{found} data is not migrated; erase the device (or use a new flash image) and mint again"
            ),
            Error::BadLayout { what } => write!(f, "flash layout refused: {what}"),
            Error::Busy => f.write_str("the vault is busy: do not call it from inside its own callback"),
            Error::Device(e) => fmt::Display::fmt(e, f),
            Error::Io(kind) => write!(f, "serial link failed ({kind:?}): check the port and that the device runs"),
            Error::Protocol { what } => write!(f, "protocol violation: {what}; check firmware and host versions"),
        }
    }
}

impl core::error::Error for Error {}

impl StoreError for Error {
    fn as_core(&self) -> Option<&aqm_core::Error> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Error::Core(_) => defmt::write!(f, "core refusal"),
            Error::Flash(_) => defmt::write!(f, "flash failure"),
            Error::Corrupt { what } => defmt::write!(f, "corrupt {=str}", what),
            Error::FlashFormat { found, supported } => {
                defmt::write!(f, "flash format v{=u32}, firmware reads v{=u32}", found, supported)
            }
            Error::BadLayout { what } => defmt::write!(f, "bad layout {=str}", what),
            Error::Busy => defmt::write!(f, "busy"),
            Error::Device(e) => defmt::write!(f, "device refusal {}", e),
            Error::Io(_) => defmt::write!(f, "serial I/O"),
            Error::Protocol { what } => defmt::write!(f, "protocol {=str}", what),
        }
    }
}
