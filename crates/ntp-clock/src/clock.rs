//! The clock the daemon steers, injected so that this crate never reads or
//! sets the OS clock itself.

use ntp_proto::{NtpDuration, NtpTimestamp};

/// A local clock that can be read and steered (the OS clock in the daemon,
/// [`crate::sim::SimClock`] in tests).
///
/// Sign conventions follow RFC 5905: an offset is how far the reference is
/// ahead of this clock, so `step(offset)` and `slew(offset)` *add* it; a
/// positive frequency makes the clock run faster.
pub trait Clock {
    /// The error the clock's operations can fail with.
    type Error;

    /// The clock's current time.
    ///
    /// # Errors
    /// If the clock cannot be read.
    fn now(&self) -> Result<NtpTimestamp, Self::Error>;

    /// Sets the frequency correction, ppm (absolute, not a change).
    ///
    /// # Errors
    /// If the clock refuses the adjustment.
    fn set_frequency(&mut self, ppm: f64) -> Result<(), Self::Error>;

    /// Adds `offset` to the clock at once.
    ///
    /// # Errors
    /// If the clock refuses the step.
    fn step(&mut self, offset: NtpDuration) -> Result<(), Self::Error>;

    /// Adds `offset` to the clock gradually (at a bounded rate, like
    /// `adjtime`); replaces any slew still in progress.
    ///
    /// # Errors
    /// If the clock refuses the adjustment.
    fn slew(&mut self, offset: NtpDuration) -> Result<(), Self::Error>;
}
