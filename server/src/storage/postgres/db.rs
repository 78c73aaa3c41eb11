//! One pooled PostgreSQL connection used from a blocking thread: each statement is prepared
//! once per connection (deadpool's statement cache) and run to completion on the backend's
//! runtime.

use crate::storage::{StorageError, StorageResult};
use deadpool_postgres::ClientWrapper;
use std::cell::Cell;
use tokio::runtime::Handle;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// Statement parameters.
pub type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

pub struct Db<'a> {
    client: &'a ClientWrapper,
    rt: &'a Handle,
    /// A transaction could not be ended: the connection must be discarded.
    broken: Cell<bool>,
}

impl<'a> Db<'a> {
    pub(super) fn new(client: &'a ClientWrapper, rt: &'a Handle) -> Db<'a> {
        Db {
            client,
            rt,
            broken: Cell::new(false),
        }
    }

    pub(super) fn broken(&self) -> bool {
        self.broken.get() || self.client.is_closed()
    }

    /// Rows of a statement (prepared once per connection).
    pub fn query(&self, sql: &str, params: Params<'_>) -> StorageResult<Vec<Row>> {
        let client = self.client;
        block_on(self.rt, async move {
            let statement = client.prepare_cached(sql).await?;
            Ok(client.query(&statement, params).await?)
        })
    }

    /// Rows of a statement built for this call (not cached: its text varies).
    pub fn query_once(&self, sql: &str, params: Params<'_>) -> StorageResult<Vec<Row>> {
        let client = self.client;
        block_on(self.rt, async move { Ok(client.query(sql, params).await?) })
    }

    /// At most one row.
    pub fn opt(&self, sql: &str, params: Params<'_>) -> StorageResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Exactly one row.
    pub fn one(&self, sql: &str, params: Params<'_>) -> StorageResult<Row> {
        self.opt(sql, params)?
            .ok_or_else(|| StorageError::Corrupt(format!("no row for: {sql}")))
    }

    /// Runs a statement; the rows it changed.
    pub fn exec(&self, sql: &str, params: Params<'_>) -> StorageResult<u64> {
        let client = self.client;
        block_on(self.rt, async move {
            let statement = client.prepare_cached(sql).await?;
            Ok(client.execute(&statement, params).await?)
        })
    }

    /// Statements without parameters.
    pub fn batch(&self, sql: &str) -> StorageResult<()> {
        let client = self.client;
        block_on(self.rt, async move { Ok(client.batch_execute(sql).await?) })
    }

    /// Runs `f` between `begin` and COMMIT, or rolls back when it fails.
    pub fn transaction<T>(
        &self,
        begin: &str,
        f: impl FnOnce(&Db<'a>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        self.batch(begin)?;
        match f(self) {
            Ok(value) => match self.batch("COMMIT") {
                Ok(()) => Ok(value),
                Err(e) => {
                    self.end_badly();
                    Err(e)
                }
            },
            Err(e) => {
                self.end_badly();
                Err(e)
            }
        }
    }

    fn end_badly(&self) {
        if self.batch("ROLLBACK").is_err() {
            self.broken.set(true);
        }
    }
}

/// Runs `future` to completion on `rt` from a blocking thread. Called from within a runtime
/// (a test, or code that forgot to move to a worker thread), where `block_on` is refused, it
/// runs on a short-lived thread of its own instead.
pub(super) fn block_on<F>(rt: &Handle, future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    if Handle::try_current().is_err() {
        return rt.block_on(future);
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| rt.block_on(future))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
