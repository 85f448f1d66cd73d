-- Pausing and resuming a queue (JobQueue.pause / JobQueue.resume, `bulwark queues pause|resume`), and the lease of
-- the process that reports the queue gauges (bulwark_job_queue_reporter, at the end).
--
-- bulwark_job_queues: one row per queue that was ever paused (a queue without a row is not paused). While a queue
-- is paused no worker, in any process, claims its jobs; jobs already running finish normally, enqueues are accepted
-- (they wait), and reclaiming lapsed leases goes on. Resuming sets paused back to false and wakes the workers (the
-- store sends the queue's NOTIFY in the same statement).
--
-- The race between a claim and a pause is decided by one advisory lock per queue, in the two-key space
-- (1112886359 = 'BULW', hashtext(queue)): every claim takes it shared, in bulwark_job_queue_open, before it reads the
-- flag; a pause takes it exclusively, in bulwark_job_queue_pause, before it sets the flag. So a pause waits for the
-- claims of its queue already in flight, and a claim that starts meanwhile waits for the pause to commit, then reads
-- the flag with a fresh snapshot (a VOLATILE function's statements each take one): once pause returns, no claim takes
-- a job of that queue. Claims of one queue never wait for each other (shared locks), take no row lock and write
-- nothing for it; advisory locks live in the lock table only. A hashtext collision between two queue names only
-- makes a pause of one wait for the in-flight claims of the other.

CREATE TABLE bulwark_job_queues (
  queue     text        PRIMARY KEY,
  paused    boolean     NOT NULL DEFAULT false,
  paused_at timestamptz,
  CONSTRAINT bulwark_job_queues_paused_at CHECK (paused = (paused_at IS NOT NULL))
);

-- Whether the claim in progress may take jobs of this queue. Called once per claim statement (an uncorrelated
-- subquery, so an InitPlan evaluated before the scan). The shared lock is held until the claim commits.
CREATE FUNCTION bulwark_job_queue_open(target text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(1112886359, hashtext(target));
  RETURN NOT EXISTS (SELECT 1 FROM bulwark_job_queues WHERE queue = target AND paused);
END
$$;

-- Pauses a queue once the claims of it in flight have committed; true when it was not paused already.
CREATE FUNCTION bulwark_job_queue_pause(target text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  changed boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(1112886359, hashtext(target));
  INSERT INTO bulwark_job_queues AS q (queue, paused, paused_at) VALUES (target, true, now())
  ON CONFLICT (queue) DO UPDATE SET paused = true, paused_at = now() WHERE NOT q.paused
  RETURNING true INTO changed;
  RETURN coalesce(changed, false);
END
$$;

-- bulwark_job_queue_reporter: the lease of the one process that reads the queue gauges for the whole database
-- (JobQueue.reportMetrics, and every worker by default), so N worker processes run one set of aggregate reads per
-- interval, not N. One row. A process takes the lease when it is free or has run out (expires_at < now()), renews it
-- at each of its reads (for three of its intervals) and gives it up when it stops (expires_at = -infinity); the
-- others find it held and skip. A lease row rather than a session advisory lock: a session lock would hold one
-- pooled connection for good (a pool of one, as on the embedded database, would starve) and does not survive
-- PgBouncer's transaction pooling. The statements recreate the row if it is missing.
CREATE TABLE bulwark_job_queue_reporter (
  id         boolean     PRIMARY KEY DEFAULT true,
  owner      text        NOT NULL,
  expires_at timestamptz NOT NULL,
  CONSTRAINT bulwark_job_queue_reporter_one CHECK (id)
);

INSERT INTO bulwark_job_queue_reporter (owner, expires_at) VALUES ('', '-infinity');
