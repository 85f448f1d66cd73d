-- Cancellation, progress and results of durable jobs (JobQueue.cancel, JobWorker.progress, result Schemas).
--
-- bulwark_jobs gains a terminal state:
--   cancelled  stopped by JobQueue.cancel while ready or running (never retried, never dead-lettered). The cancel is
--              one statement: the lease is voided (lease_owner / lease_expires_at cleared, so the running worker's
--              late outcome is fenced off like any stale worker's) and the dedup key cleared (a new job may take it).
--              attempt and lease_epoch are kept: they name the lease the cancel voided, which is how that worker
--              learns it must interrupt its handler (cancelledJobs).
-- and two columns, kept once the job finished:
--   progress   the latest report of its handler, {value (0-100), message, attempt, updatedAt}, written fenced by the
--              lease; NULL until one is reported.
--   result     what a succeeded job's handler returned, encoded with its definition's result Schema (any JSON value,
--              `null` included); NULL: no result.
--
-- Existing rows keep their states and get NULL progress and result; the new columns have no default, so adding them
-- rewrites nothing. The state check is replaced by one that also allows 'cancelled'.

ALTER TABLE bulwark_jobs
  DROP CONSTRAINT bulwark_jobs_state,
  ADD CONSTRAINT bulwark_jobs_state CHECK (state IN ('ready', 'running', 'succeeded', 'dead', 'cancelled')),
  ADD COLUMN progress jsonb,
  ADD COLUMN result jsonb;

-- Pruning deletes cancelled jobs finished before the cutoff, as it deletes succeeded ones (0003): the same index shape.
CREATE INDEX bulwark_jobs_cancelled ON bulwark_jobs (finished_at) WHERE state = 'cancelled';
