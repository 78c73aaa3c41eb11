//! Fixed pools of OS threads for blocking work (SQLite, argon2), instead of tokio's elastic
//! blocking pool. A fixed set of threads keeps memory bounded: the allocator keeps one arena
//! per thread, and a burst of 19 MiB argon2 hashes spread over hundreds of fresh threads
//! otherwise leaves gigabytes resident.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A named pool of threads running closures one at a time each.
#[derive(Clone)]
pub struct WorkerPool {
    sender: mpsc::Sender<Job>,
}

/// The pool's threads are gone (only during shutdown).
#[derive(Debug, thiserror::Error)]
#[error("worker pool stopped")]
pub struct PoolStopped;

impl WorkerPool {
    pub fn new(name: &str, threads: usize) -> std::io::Result<WorkerPool> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            let pool_name = name.to_owned();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || loop {
                    let job = {
                        let guard = receiver.lock().unwrap_or_else(|e| e.into_inner());
                        guard.recv()
                    };
                    match job {
                        // A panicking job (a bug, or a dependency tripping on hostile input)
                        // fails its own request: its result channel is dropped, the caller
                        // answers 500, and this thread goes on serving the others.
                        Ok(job) => {
                            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err()
                            {
                                tracing::error!(pool = %pool_name, "a job panicked");
                            }
                        }
                        Err(_) => return, // every sender dropped: the server is shutting down
                    }
                })?;
        }
        Ok(WorkerPool { sender })
    }

    /// Runs `f` on the pool and waits for its result without blocking the async runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolStopped> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.sender
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| PoolStopped)?;
        rx.await.map_err(|_| PoolStopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_returns_results() {
        let pool = WorkerPool::new("t", 2).unwrap();
        let results: Vec<_> = futures_join((0..10).map(|i| pool.run(move || i * i))).await;
        assert_eq!(results, (0..10).map(|i| i * i).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_pool_keeps_working() {
        let pool = WorkerPool::new("t", 1).unwrap();
        let failed = pool.run(|| -> i32 { panic!("bug") }).await;
        assert!(failed.is_err());
        assert_eq!(
            pool.run(|| 7).await.ok(),
            Some(7),
            "the one thread survived"
        );
    }

    async fn futures_join<F: std::future::Future<Output = Result<i32, PoolStopped>>>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<i32> {
        let mut out = Vec::new();
        for f in futures {
            out.push(f.await.unwrap());
        }
        out
    }
}
