//! Group commit: the writes of many callers in one transaction.
//!
//! A [`Batcher`] owns a task that takes the items callers [`submit`](Batcher::submit), as
//! many at once as are waiting (up to its `max`), and writes them with one call of its
//! write function: one transaction with multi-row statements, instead of one transaction
//! and a round of statement hand-offs per caller. On SQLite, whose one writer every node's
//! writes queue for, that is most of a write's cost; on PostgreSQL it saves the round trips.
//!
//! - Items are written in the order they were submitted, one batch at a time.
//! - When a batch of several items fails, each of its items is written again alone, so one
//!   item the store refuses fails its own caller only.
//! - The queue is bounded: a caller waits for room (back-pressure), never grows memory.
//! - A caller that stops waiting does not stop its write: it is written, or fails, as if
//!   it had waited.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::mesh::{BoxFuture, MeshError};

/// Writes one batch: one answer per item, in the items' order; `Err` fails the batch.
pub type Write<I, O> =
    dyn Fn(Vec<I>) -> BoxFuture<'static, Result<Vec<O>, MeshError>> + Send + Sync;

/// An item waiting for its batch, with who waits for its answer.
type Waiting<I, O> = (I, oneshot::Sender<Result<O, MeshError>>);

/// A group-commit writer; cheap to clone.
pub struct Batcher<I, O> {
    tx: mpsc::Sender<Waiting<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<I, O> Batcher<I, O>
where
    I: Clone + Send + 'static,
    O: Send + 'static,
{
    /// Starts the writer task: batches of at most `max` items, at most `queue` items
    /// waiting, each batch written by `write`. Needs a Tokio runtime.
    pub fn start(name: &'static str, max: usize, queue: usize, write: Arc<Write<I, O>>) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(run(name, max.max(1), rx, write));
        Self { tx }
    }

    /// Writes `item` in the next batch; answers what the write function answered for it.
    pub async fn submit(&self, item: I) -> Result<O, MeshError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((item, tx))
            .await
            .map_err(|_| MeshError::unavailable("the writer is stopping"))?;
        answer(rx).await
    }

    /// Queues `item` now (so items queued one after another are written in that order)
    /// and answers a future of its answer; `unavailable` when the queue is full, for the
    /// callers that cannot wait for room.
    pub fn enqueue(&self, item: I) -> Result<BoxFuture<'static, Result<O, MeshError>>, MeshError> {
        let (tx, rx) = oneshot::channel();
        self.tx.try_send((item, tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                MeshError::unavailable("the writer's queue is full")
            }
            mpsc::error::TrySendError::Closed(_) => {
                MeshError::unavailable("the writer is stopping")
            }
        })?;
        Ok(Box::pin(answer(rx)))
    }
}

/// The indices of `items` by key, keys in the order first seen and each key's indices in
/// order: a batch's items per entity, so each entity's are written in the order they came.
pub fn grouped<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> &'a str,
) -> Vec<(&'a str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, at)) => at.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    groups
}

/// An item an actor handed to a [`Batcher`] before answering its caller, so it can take
/// its next request while the batch commits: resolves once the item is written.
pub struct Written<O>(pub BoxFuture<'static, Result<O, MeshError>>);

impl<O> std::fmt::Debug for Written<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Written")
    }
}

impl<O> Written<O> {
    /// Waits for the write until `deadline`: `deadline_exceeded` after it (the item is
    /// still written, or fails, as if it had been waited for).
    pub async fn until(self, deadline: std::time::Instant) -> Result<O, MeshError> {
        tokio::time::timeout_at(deadline.into(), self.0)
            .await
            .map_err(|_| MeshError::deadline())?
    }
}

async fn answer<O>(rx: oneshot::Receiver<Result<O, MeshError>>) -> Result<O, MeshError> {
    rx.await
        .map_err(|_| MeshError::unavailable("the writer is stopping"))?
}

async fn run<I: Clone, O>(
    name: &'static str,
    max: usize,
    mut rx: mpsc::Receiver<Waiting<I, O>>,
    write: Arc<Write<I, O>>,
) {
    let mut batch: Vec<Waiting<I, O>> = Vec::with_capacity(max);
    let batches = metrics::counter!(crate::metrics::BATCHES, "batch" => name);
    let batch_items = metrics::counter!(crate::metrics::BATCH_ITEMS, "batch" => name);
    while rx.recv_many(&mut batch, max).await > 0 {
        let items: Vec<I> = batch.iter().map(|(i, _)| i.clone()).collect();
        let n = items.len();
        batches.increment(1);
        batch_items.increment(n as u64);
        match write(items).await {
            Ok(answers) if answers.len() == n => {
                for ((_, waiter), answer) in batch.drain(..).zip(answers) {
                    let _ = waiter.send(Ok(answer));
                }
            }
            Ok(answers) => {
                let e = MeshError::internal(format!(
                    "{name}: a batch of {n} got {} answers",
                    answers.len()
                ));
                for (_, waiter) in batch.drain(..) {
                    let _ = waiter.send(Err(e.clone()));
                }
            }
            Err(e) if n == 1 => {
                for (_, waiter) in batch.drain(..) {
                    let _ = waiter.send(Err(e.clone()));
                }
            }
            Err(e) => {
                tracing::debug!(batch = name, items = n, error = %e, "a batch failed; writing its items one by one");
                for (item, waiter) in batch.drain(..) {
                    let answer = write(vec![item]).await.and_then(|mut a| {
                        a.pop()
                            .ok_or_else(|| MeshError::internal(format!("{name}: no answer")))
                    });
                    let _ = waiter.send(answer);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A writer that records its batches and refuses the item 1013.
    fn recording(seen: Arc<Mutex<Vec<Vec<u32>>>>) -> Arc<Write<u32, u32>> {
        Arc::new(move |items: Vec<u32>| {
            let seen = seen.clone();
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                seen.lock().unwrap().push(items.clone());
                if items.contains(&1013) {
                    return Err(MeshError::invalid("1013 is refused"));
                }
                Ok(items.iter().map(|i| i * 2).collect())
            })
        })
    }

    /// Submits each of `items` at once, from its own task; answers each with its answer.
    async fn submit_each(
        b: &Batcher<u32, u32>,
        items: std::ops::Range<u32>,
    ) -> Vec<(u32, Result<u32, MeshError>)> {
        let calls: Vec<_> = items
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { (i, b.submit(i).await) })
            })
            .collect();
        let mut answers = Vec::with_capacity(calls.len());
        for c in calls {
            answers.push(c.await.unwrap());
        }
        answers
    }

    #[tokio::test]
    async fn waiting_items_share_a_batch_and_each_gets_its_answer() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let b = Batcher::start("test", 64, 1024, recording(seen.clone()));
        for (i, answer) in submit_each(&b, 0..100).await {
            assert_eq!(answer.unwrap(), i * 2);
        }
        let batches = seen.lock().unwrap().clone();
        assert!(
            batches.len() < 100,
            "no batching: {} batches",
            batches.len()
        );
        assert!(batches.iter().all(|b| b.len() <= 64));
        let mut all: Vec<u32> = batches.into_iter().flatten().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_refused_item_fails_only_its_own_caller() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let b = Batcher::start("test", 64, 1024, recording(seen.clone()));
        for (i, answer) in submit_each(&b, 1010..1020).await {
            if i == 1013 {
                assert_eq!(answer.unwrap_err().message, "1013 is refused");
            } else {
                assert_eq!(answer.unwrap(), i * 2);
            }
        }
    }

    #[tokio::test]
    async fn items_are_written_in_the_order_they_were_submitted() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let b = Batcher::start("test", 8, 1024, recording(seen.clone()));
        let mut waits = Vec::new();
        for i in 0..40u32 {
            let b = b.clone();
            // Submitted in order: each send completes before the next starts.
            let (tx, rx) = oneshot::channel();
            b.tx.send((i, tx)).await.unwrap();
            waits.push(rx);
        }
        for (i, w) in waits.into_iter().enumerate() {
            assert_eq!(w.await.unwrap().unwrap(), i as u32 * 2);
        }
        let order: Vec<u32> = seen.lock().unwrap().iter().flatten().copied().collect();
        assert_eq!(order, (0..40).collect::<Vec<_>>());
    }
}
