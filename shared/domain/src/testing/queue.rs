//! The sync queue as SQS behaves for the simulation: at-least-once (a message may be delivered
//! twice), in no particular order, a received message invisible until it is deleted or its
//! visibility ends, and sends that fail (before or after the message went out).

use super::faults::Faults;
use super::store::{Call, enter, leave};
use crate::ports::{JobQueue, StoreError, SyncJob};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Message {
    pub job: SyncJob,
    pub visible_at: Instant,
    pub receives: u32,
}

pub struct SimQueue {
    messages: Mutex<BTreeMap<u64, Message>>,
    /// (run id, incarnation) of every job ever sent.
    sent: Mutex<std::collections::BTreeSet<(String, String)>>,
    next: Mutex<u64>,
    faults: Arc<Faults>,
}

impl SimQueue {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            messages: Mutex::default(),
            sent: Mutex::default(),
            next: Mutex::new(1),
            faults,
        }
    }

    fn push(&self, job: &SyncJob) {
        let mut next = self.next.lock().unwrap();
        let message = Message {
            job: job.clone(),
            visible_at: Instant::now(),
            receives: 0,
        };
        self.messages.lock().unwrap().insert(*next, message);
        let sent = (job.run_id.to_string(), job.incarnation.clone());
        self.sent.lock().unwrap().insert(sent);
        *next += 1;
    }

    /// Ids of the messages a receive may answer now.
    pub fn visible(&self) -> Vec<u64> {
        let now = Instant::now();
        let all = self.messages.lock().unwrap();
        all.iter()
            .filter(|(_, m)| m.visible_at <= now)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Receives message `id`: invisible for `visibility` unless deleted or returned before.
    pub fn receive(&self, id: u64, visibility: Duration) -> Option<Message> {
        let mut all = self.messages.lock().unwrap();
        let m = all.get_mut(&id)?;
        m.visible_at = Instant::now() + visibility;
        m.receives += 1;
        Some(m.clone())
    }

    /// The job is done with: the message goes.
    pub fn delete(&self, id: u64) {
        self.messages.lock().unwrap().remove(&id);
    }

    /// The job must come back: visible again after `after`.
    pub fn give_back(&self, id: u64, after: Duration) {
        if let Some(m) = self.messages.lock().unwrap().get_mut(&id) {
            m.visible_at = Instant::now() + after;
        }
    }

    pub fn len(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// When the next invisible message shows again.
    pub fn next_visible(&self) -> Option<Instant> {
        let all = self.messages.lock().unwrap();
        all.values().map(|m| m.visible_at).min()
    }

    /// Whether a job of `run` of `incarnation` was ever sent.
    pub fn ever_sent(&self, run: &str, incarnation: &str) -> bool {
        let key = (run.to_owned(), incarnation.to_owned());
        self.sent.lock().unwrap().contains(&key)
    }
}

#[async_trait]
impl JobQueue for SimQueue {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), StoreError> {
        let call = Call::write("enqueue");
        let tap: &dyn super::store::Tap = self.faults.as_ref();
        let f = enter(Some(tap), &call).await?;
        for job in jobs {
            self.push(job);
            if self.faults.chance(self.faults.rates.queue_duplicate) {
                self.push(job);
            }
        }
        leave(Some(tap), &call, f)
    }
}
