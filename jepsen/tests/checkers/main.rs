//! Checker tests on hand-made histories: every anomaly class each checker reports is shown to
//! be caught, and valid histories (including generated linearizable ones with indeterminate
//! operations) are shown to pass. No cluster is involved; each test runs in milliseconds.

mod audit;
mod leak_liveness;
mod register;
mod set;
mod support;
mod transit;
mod wgl;
