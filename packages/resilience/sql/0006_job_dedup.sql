-- Dedup that never drops work silently (JobQueue.DedupOptions, JobStore.DedupPolicy).
--
-- A dedup key is scoped by queue AND kind, and only a job that holds it deduplicates. A job holds its key while it is
-- ready, running or succeeded (until pruned), and while dead only if it was enqueued with keepAfterDeath; a job that
-- died otherwise, or that a dedup window superseded (dedup_released), or in any other state (cancelled) frees it, so
-- the same key enqueues a new job. The partial unique index below states that rule; the enqueue function's lookups
-- and the memory store (job-queue/internal/memory/state.ts, holdsDedupKey) repeat it word for word. Freeing a key on
-- death needs no write: the dead row simply leaves the index.
--
-- Existing rows: the old index (queue, dedup_key) was stricter than the new one, so they satisfy it; dead jobs free
-- their keys from now on (keepAfterDeath is false for every existing row).

ALTER TABLE bulwark_jobs
  ADD COLUMN dedup_keep_dead boolean NOT NULL DEFAULT false,
  ADD COLUMN dedup_released  boolean NOT NULL DEFAULT false;

CREATE UNIQUE INDEX bulwark_jobs_dedup_live ON bulwark_jobs (queue, kind, dedup_key)
  WHERE dedup_key IS NOT NULL AND NOT dedup_released
    AND (state IN ('ready', 'running', 'succeeded') OR (state = 'dead' AND dedup_keep_dead));

DROP INDEX bulwark_jobs_dedup;

-- bulwark_jobs_enqueue_one: enqueues one job, applying the dedup rule, stated once:
--   1. no job holds (queue, kind, key)                          → insert                      'created'
--   2. the holder was enqueued longer ago than the window         → it gives up its key, insert 'created'
--   3. same payload (jsonb equality)                             → 'deduplicated', unless p_on_conflict = 'replace',
--                                                                  the holder is waiting and a field is to be replaced
--   4. another payload: 'ignore'                                 → 'deduplicated'
--                       'replace' and the holder is waiting      → overwrite it                'replaced'
--                       otherwise                                → 'conflict' (nothing written)
-- Waiting: ready and never attempted (queued or scheduled). Replace overwrites the payload, and priority,
-- max_attempts and run_at only when their p_replace_* flag is set (the enqueue gave them).
--
-- How (as the idempotency claim rule in 0005): a first read takes no lock, and an answer that writes
-- nothing (deduplicated, conflict) is given from it. An absent key is inserted with ON CONFLICT DO NOTHING: of
-- concurrent inserts one wins, the others wait for its transaction and then read its row. A write to the holder
-- (supersede, replace) first reads it again FOR UPDATE, which waits for concurrent writers (a claim, another replace)
-- and returns its latest version, decides again on that version, and writes under the lock. The lock (and an
-- inserted row) is held until the caller's transaction ends, so concurrent enqueues of the key wait for its outcome.
CREATE FUNCTION bulwark_jobs_enqueue_one(
  p_queue text, p_kind text, p_payload jsonb, p_priority smallint, p_max_attempts integer, p_dedup_key text,
  p_run_at timestamptz, p_delay_ms float8, p_on_conflict text, p_keep_dead boolean, p_window_ms float8,
  p_replace_priority boolean, p_replace_max_attempts boolean, p_replace_run_at boolean,
  OUT id bigint, OUT outcome text, OUT due boolean,
  OUT existing_state text, OUT existing_attempt integer, OUT existing_run_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  existing bulwark_jobs%ROWTYPE;
  locked boolean := false;
  new_run_at timestamptz := coalesce(p_run_at, now() + p_delay_ms * interval '1 millisecond');
  same boolean;
BEGIN
  IF p_dedup_key IS NULL THEN
    INSERT INTO bulwark_jobs AS j (queue, kind, payload, priority, max_attempts, run_at)
    VALUES (p_queue, p_kind, p_payload, p_priority, p_max_attempts, new_run_at)
    RETURNING j.id, j.run_at <= now() INTO id, due;
    outcome := 'created';
    RETURN;
  END IF;

  -- Under READ COMMITTED each statement reads the latest commits, so every round moves on (absent → inserted or
  -- read; read → answered or locked; locked → answered or written); the bound only guards against a session whose
  -- isolation level keeps one snapshot for the whole call.
  FOR tries IN 1..8 LOOP
    IF locked THEN
      SELECT * INTO existing FROM bulwark_jobs AS j
      WHERE j.queue = p_queue AND j.kind = p_kind AND j.dedup_key = p_dedup_key AND NOT j.dedup_released
        AND (j.state IN ('ready', 'running', 'succeeded') OR (j.state = 'dead' AND j.dedup_keep_dead))
      FOR UPDATE;
    ELSE
      SELECT * INTO existing FROM bulwark_jobs AS j
      WHERE j.queue = p_queue AND j.kind = p_kind AND j.dedup_key = p_dedup_key AND NOT j.dedup_released
        AND (j.state IN ('ready', 'running', 'succeeded') OR (j.state = 'dead' AND j.dedup_keep_dead));
    END IF;

    IF NOT FOUND THEN
      INSERT INTO bulwark_jobs AS j (queue, kind, payload, priority, max_attempts, dedup_key, dedup_keep_dead, run_at)
      VALUES (p_queue, p_kind, p_payload, p_priority, p_max_attempts, p_dedup_key, p_keep_dead, new_run_at)
      ON CONFLICT (queue, kind, dedup_key) WHERE dedup_key IS NOT NULL AND NOT dedup_released
        AND (state IN ('ready', 'running', 'succeeded') OR (state = 'dead' AND dedup_keep_dead))
        DO NOTHING
      RETURNING j.id, j.run_at <= now() INTO id, due;
      IF FOUND THEN
        outcome := 'created';
        RETURN;
      END IF;
      -- Another enqueue inserted the key first: read its job.
      locked := false;
      CONTINUE;
    END IF;

    IF p_window_ms IS NOT NULL AND existing.enqueued_at < now() - p_window_ms * interval '1 millisecond' THEN
      IF NOT locked THEN
        locked := true;
        CONTINUE;
      END IF;
      -- Superseded: the old job keeps going as it is, without its key; the next round inserts the new one.
      UPDATE bulwark_jobs AS j SET dedup_released = true WHERE j.id = existing.id;
      locked := false;
      CONTINUE;
    END IF;

    same := existing.payload = p_payload;
    IF p_on_conflict = 'replace' AND existing.state = 'ready' AND existing.attempt = 0
      AND (NOT same OR p_replace_priority OR p_replace_max_attempts OR p_replace_run_at) THEN
      IF NOT locked THEN
        locked := true;
        CONTINUE;
      END IF;
      UPDATE bulwark_jobs AS j SET
        payload = p_payload,
        priority = CASE WHEN p_replace_priority THEN p_priority ELSE j.priority END,
        max_attempts = CASE WHEN p_replace_max_attempts THEN p_max_attempts ELSE j.max_attempts END,
        run_at = CASE WHEN p_replace_run_at THEN new_run_at ELSE j.run_at END
      WHERE j.id = existing.id
      RETURNING j.id, j.run_at <= now() INTO id, due;
      outcome := 'replaced';
      RETURN;
    END IF;

    id := existing.id;
    due := false;
    IF same OR p_on_conflict = 'ignore' THEN
      outcome := 'deduplicated';
    ELSE
      outcome := 'conflict';
      existing_state := existing.state;
      existing_attempt := existing.attempt;
      existing_run_at := existing.run_at;
    END IF;
    RETURN;
  END LOOP;
  RAISE EXCEPTION 'bulwark_jobs_enqueue_one: no consistent answer (is the session''s isolation level above READ COMMITTED?)';
END
$$;

-- bulwark_jobs_enqueue: every element of a JSON array of jobs in `ord` order, within one statement, each seeing the
-- ones before it (a later duplicate of a key deduplicates against, replaces or conflicts with an earlier one).
CREATE FUNCTION bulwark_jobs_enqueue(p_jobs jsonb) RETURNS TABLE (
  ord integer, id bigint, outcome text, due boolean,
  existing_state text, existing_attempt integer, existing_run_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT * FROM jsonb_to_recordset(p_jobs) AS x(
      ord integer, queue text, kind text, payload jsonb, priority smallint, max_attempts integer, dedup_key text,
      run_at timestamptz, delay_ms float8, on_conflict text, keep_dead boolean, window_ms float8,
      replace_priority boolean, replace_max_attempts boolean, replace_run_at boolean
    )
    ORDER BY x.ord
  LOOP
    RETURN QUERY SELECT r.ord, c.id, c.outcome, c.due, c.existing_state, c.existing_attempt, c.existing_run_at
    FROM bulwark_jobs_enqueue_one(
      r.queue, r.kind, r.payload, r.priority, r.max_attempts, r.dedup_key, r.run_at, r.delay_ms, r.on_conflict,
      r.keep_dead, r.window_ms, r.replace_priority, r.replace_max_attempts, r.replace_run_at
    ) AS c;
  END LOOP;
END
$$;
