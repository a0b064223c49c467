//! The database plumbing that the queue and the storage share: [`Db`], the pool to SQLite or
//! PostgreSQL; [`Timestamp`], the one way every time is kept on both backends;
//! [`WritePool::begin_write`], the one way a write transaction is opened; [`PauseTable`], the
//! one way something is paused for every process; and
//! [`delete_in_batches`], the one way retention deletes.

mod error;
pub mod migrate;
mod pauses;
mod pool;
mod prune;
mod timestamp;
mod transaction;

pub use error::{cause_chain, is_storage_full, is_unavailable};
pub use pauses::{Pause, PauseTable, QUEUE_PAUSES, SCHEDULE_PAUSES};
pub use pool::{BackendKind, ConnectError, Db, DbOptions};
pub use prune::{Deleted, delete_in_batches};
pub use timestamp::Timestamp;
pub use transaction::{WriteConnection, WritePool};
