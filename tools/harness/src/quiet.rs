//! The tests of the one test binary run side by side on two cores. A test whose assertion holds
//! only while nothing slows its calls past a deadline runs [`alone`]; every other test's
//! environment holds a [`share`] of the room for as long as it lives.

use std::cell::Cell;
use std::sync::{Arc, LazyLock};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

static ROOM: LazyLock<Arc<RwLock<()>>> = LazyLock::new(|| Arc::new(RwLock::new(())));

thread_local! {
    /// Whether the test on this thread holds the room alone (libtest runs each test on a thread
    /// of its own, and its environments are started there).
    static ALONE: Cell<bool> = const { Cell::new(false) };
}

/// The room to oneself: waits until every running test's environment is gone (tests that start
/// meanwhile wait behind), and holds it until dropped. Take it before starting the environment.
pub struct Alone {
    _room: OwnedRwLockWriteGuard<()>,
}

impl Drop for Alone {
    fn drop(&mut self) {
        ALONE.with(|a| a.set(false));
    }
}

pub async fn alone() -> Alone {
    let room = ROOM.clone().write_owned().await;
    ALONE.with(|a| a.set(true));
    Alone { _room: room }
}

/// A share of the room for one environment (none for the test that holds it alone).
pub(crate) async fn share() -> Option<OwnedRwLockReadGuard<()>> {
    if ALONE.with(Cell::get) {
        None
    } else {
        Some(ROOM.clone().read_owned().await)
    }
}
