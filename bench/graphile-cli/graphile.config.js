// graphile-worker's CLI configuration for bench/queue.sh: the settings of its own perfTest
// (local queue of 500 refetched after 10 ms, batched completion and failure), with the
// concurrency and pool size bench/queue.sh passes in.
const concurrency = Number(process.env.GRAPHILE_CONCURRENCY || 10);

module.exports = {
  worker: {
    connectionString: process.env.DATABASE_URL,
    fileExtensions: [".js"],
    concurrentJobs: concurrency,
    maxPoolSize: concurrency + 1,
    localQueue: { size: 500, refetchDelay: { durationMs: 10 } },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};
