// graphile-worker on the same PostgreSQL as `orderly bench queue`, for comparison.
//
//   DATABASE_URL=postgres://… node bench.js [jobs=20000] [concurrency=10] [tuned=1]
//
// Enqueues `jobs` no-op jobs with its bulk addJobs, vacuums and analyzes its jobs table,
// then runs a worker until the queue is empty, and prints one JSON line with enqueue_per_s and drain_per_s. tuned=1 turns on its
// local queue and batched completion (the fastest configuration its docs describe);
// tuned=0 uses its defaults.
const { run, makeWorkerUtils } = require("graphile-worker");

const connectionString = process.env.DATABASE_URL;
const jobs = Number(process.argv[2] || 20000);
const concurrency = Number(process.argv[3] || 10);
const tuned = (process.argv[4] || "1") === "1";

async function main() {
  const utils = await makeWorkerUtils({ connectionString });
  await utils.migrate();
  const enqueueStarted = Date.now();
  for (let i = 0; i < jobs; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, jobs - i) }, () => ({
      identifier: "noop",
      payload: {},
    }));
    await utils.addJobs(batch);
  }
  const enqueueSeconds = (Date.now() - enqueueStarted) / 1000;
  // As an operator would after a bulk load, and as orderly's side does: the planner's
  // statistics describe the table as loaded, not as it was empty.
  await utils.withPgClient((client) => client.query("vacuum analyze graphile_worker._private_jobs"));

  let done = 0;
  let allRan;
  const ran = new Promise((resolve) => (allRan = resolve));
  const worker = {
    connectionString,
    concurrentJobs: concurrency,
    maxPoolSize: concurrency + 2,
    pollInterval: 1000,
  };
  if (tuned) {
    worker.localQueue = { size: 500 };
    worker.completeJobBatchDelay = 0;
    worker.failJobBatchDelay = 0;
  }
  const drainStarted = Date.now();
  const runner = await run({
    noHandleSignals: true,
    preset: { worker },
    taskList: {
      noop: async () => {
        done += 1;
        if (done === jobs) allRan();
      },
    },
  });
  await ran;
  // Finished jobs are deleted; the drain ends when the table is empty.
  for (;;) {
    const { rows } = await utils.withPgClient((client) =>
      client.query("select count(*)::int as n from graphile_worker._private_jobs"),
    );
    if (rows[0].n === 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const drainSeconds = (Date.now() - drainStarted) / 1000;
  await runner.stop();
  await utils.release();
  console.log(
    JSON.stringify({
      name: `graphile-worker ${tuned ? "tuned" : "defaults"}`,
      jobs,
      concurrency,
      enqueue_per_s: jobs / enqueueSeconds,
      drain_per_s: jobs / drainSeconds,
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
