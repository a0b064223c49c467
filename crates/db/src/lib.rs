//! The database plumbing that the queue and the storage share: [`Timestamp`], the one way
//! every time is kept on both backends, and [`WritePool::begin_write`], the one way a write
//! transaction is opened.

mod timestamp;
mod transaction;

pub use timestamp::Timestamp;
pub use transaction::WritePool;
