//! What became of one reading the job meant to post: the value the senders hand to the
//! recorder (neither needs the other's module).

use super::plan::Reading;

/// How one posted reading ended.
pub(super) enum Sent {
    Accepted(Reading),
    Unmapped(Reading),
    Failed(Reading, String),
    /// Not sent: the job stopped before it (see `Sender::stop`).
    Unsent(Reading),
}
