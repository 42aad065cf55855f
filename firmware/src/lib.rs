//! aqm-firmware (work in progress).
