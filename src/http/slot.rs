//! Work slots, and waits inside the HTTP layer that give them back.
//!
//! Apply bounds concurrent work with a semaphore of `parallelism` slots: a client holds one
//! while it makes requests or builds, and gives it back while it waits (DESIGN: waiting never
//! holds a worker slot). Some waits happen deep inside a request: the client-side rate
//! limiter's window, a vendor's 429 waited out in place, a scope the vendor blocked. Those go
//! through [`pause`], which gives back the slot of the client whose request it is (found in a
//! task-local set by [`holding`]) for the length of the wait and takes one again before the
//! request goes on. Outside apply (plan, status) no slot is set and a pause is a plain sleep.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// One client's work slot: taken from the shared semaphore, given back, taken again.
pub struct WorkSlot {
    slots: Arc<Semaphore>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl WorkSlot {
    /// A holder of no slot yet, drawing from `slots`.
    pub fn new(slots: Arc<Semaphore>) -> Arc<WorkSlot> {
        Arc::new(WorkSlot {
            slots,
            permit: Mutex::new(None),
        })
    }

    /// Take a slot, unless one is held already.
    pub async fn take(&self) -> Result<(), AcquireError> {
        if self.is_held() {
            return Ok(());
        }
        let permit = self.slots.clone().acquire_owned().await?;
        *self.lock() = Some(permit);
        Ok(())
    }

    /// Give the slot back; whether one was held.
    pub fn give_back(&self) -> bool {
        self.lock().take().is_some()
    }

    pub fn is_held(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<OwnedSemaphorePermit>> {
        // Never held across an await; a panic elsewhere leaves a usable value.
        self.permit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

tokio::task_local! {
    static SLOT: Arc<WorkSlot>;
}

/// Run `work` (a client's steps) with `slot` as the slot its requests' waits give back.
pub async fn holding<F: Future>(slot: Arc<WorkSlot>, work: F) -> F::Output {
    SLOT.scope(slot, work).await
}

/// Waits shorter than this keep the slot: queueing for it again would cost about as much as
/// the wait frees, and short waits (a retry's backoff) are part of the work.
const KEEP_BELOW: Duration = Duration::from_millis(500);

/// Sleep `wait` inside a request; a long wait gives the caller's work slot back meanwhile and
/// takes one again before returning (it may queue behind clients that went on meanwhile).
pub async fn pause(wait: Duration) {
    let slot = if wait >= KEEP_BELOW {
        SLOT.try_with(Arc::clone).ok()
    } else {
        None
    };
    let released = slot.as_ref().is_some_and(|s| s.give_back());
    tokio::time::sleep(wait).await;
    if let Some(slot) = slot.filter(|_| released) {
        // A closed semaphore (the run is ending) leaves the client without a slot; the next
        // step asks for one again and is refused there.
        let _ = slot.take().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_pause_lends_the_slot_to_another_client() {
        let slots = Arc::new(Semaphore::new(1));
        let a = WorkSlot::new(slots.clone());
        a.take().await.expect("slot");
        assert_eq!(slots.available_permits(), 0);

        let waiting = tokio::spawn(holding(a.clone(), pause(Duration::from_millis(600))));
        tokio::task::yield_now().await;
        // While `a` waits, `b` gets the only slot and works.
        let b = WorkSlot::new(slots.clone());
        tokio::time::timeout(Duration::from_millis(400), b.take())
            .await
            .expect("the slot was lent")
            .expect("slot");
        assert!(!a.is_held());
        b.give_back();
        waiting.await.expect("pause");
        assert!(a.is_held(), "the slot is taken again after the wait");
        assert_eq!(slots.available_permits(), 0);
    }

    #[tokio::test]
    async fn a_short_pause_or_one_without_a_slot_keeps_things_as_they_are() {
        let slots = Arc::new(Semaphore::new(1));
        let a = WorkSlot::new(slots.clone());
        a.take().await.expect("slot");
        holding(a.clone(), pause(Duration::from_millis(100))).await;
        assert!(a.is_held());
        assert_eq!(slots.available_permits(), 0);
        // Outside `holding` (plan, status): a plain sleep.
        pause(Duration::from_millis(600)).await;
        assert!(a.is_held());
    }
}
