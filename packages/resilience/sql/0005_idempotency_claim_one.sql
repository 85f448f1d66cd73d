-- The idempotency claim rule, stated once (SqlIdempotencyStore).
--
-- :BULWARK_IDEMPOTENCY_TABLE_claim_one claims one key, or says why not. The single claim
-- (:BULWARK_IDEMPOTENCY_TABLE_claim, from 0001) and the batch claim (:BULWARK_IDEMPOTENCY_TABLE_claim_batch, from
-- 0004) are redefined here to call it, so every claim is decided by this one function. Their signatures and answers
-- do not change. The in-memory store states the same rule in TypeScript (idempotency/internal/memoryStore.ts,
-- `takeover`, in the same order); the conformance suite and the model test (test/idempotency/) hold the two to the
-- same answers, through the single and the batch claim.
--
-- Names are placeholders, replaced before the text runs: see 0001_idempotency.sql.

-- The rule: a record may be claimed when its lease is not live and either
--   - it has expired: a fresh start, attempt 1, whatever its fingerprint; or
--   - it has the request's fingerprint and is not completed: released → attempt + 1; in progress with a lapsed lease
--     → attempt + 1 and recovery (the last attempt's side effects are unknown).
-- Any other record is answered as it is: the caller replays it (completed), waits or conflicts (a live lease), or
-- is refused (another fingerprint).
--
-- How: a first read takes no lock. A record the rule refuses is answered from it, so a replay or a duplicate writes
-- nothing (no lock, no WAL flush at commit); a completed record cannot change until it expires (its expiry only moves
-- later), so that read is its final answer. An absent key is inserted (ON CONFLICT DO NOTHING: of concurrent inserts
-- one wins; the others wait for it to commit, then read it). A record the rule takes is read again FOR UPDATE, which
-- waits for concurrent writers and returns the latest version; the rule is applied again to that version, and only
-- then is the row updated, under the lock: of any number of concurrent claims, exactly one takes the key.
--
-- Returns claimed = true with the attempt and recovery flag, or claimed = false with the record as read (lease and
-- expiry as milliseconds from now()).
CREATE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_claim_one(
  p_scope text, p_partition text, p_key text, p_fingerprint text, p_owner text, p_lease_ms float8, p_ttl_ms float8,
  OUT claimed boolean, OUT state text, OUT fingerprint text, OUT attempt integer, OUT recovery boolean,
  OUT lease_remaining_ms float8, OUT expires_in_ms float8, OUT outcome text, OUT payload text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  existing :BULWARK_IDEMPOTENCY_TABLE%ROWTYPE;
  locked boolean := false;
  claimable boolean;
  next_attempt integer;
  next_recovery boolean;
BEGIN
  -- Under READ COMMITTED each statement reads the latest commits, so every round moves on (absent → inserted or
  -- read; read → answered or locked; locked → answered or updated); the bound only guards against a session whose
  -- isolation level keeps one snapshot for the whole call.
  FOR tries IN 1..8 LOOP
    IF locked THEN
      SELECT * INTO existing FROM :BULWARK_IDEMPOTENCY_TABLE AS k
      WHERE k.scope = p_scope AND k.partition_key = p_partition AND k.idempotency_key = p_key
      FOR UPDATE;
    ELSE
      SELECT * INTO existing FROM :BULWARK_IDEMPOTENCY_TABLE AS k
      WHERE k.scope = p_scope AND k.partition_key = p_partition AND k.idempotency_key = p_key;
    END IF;

    IF NOT FOUND THEN
      INSERT INTO :BULWARK_IDEMPOTENCY_TABLE AS k (
        scope, partition_key, idempotency_key, fingerprint, state, owner_token, attempt, recovery,
        lease_expires_at, expires_at
      ) VALUES (
        p_scope, p_partition, p_key, p_fingerprint, 'in_progress', p_owner, 1, false,
        now() + p_lease_ms * interval '1 millisecond',
        now() + greatest(p_ttl_ms, p_lease_ms) * interval '1 millisecond'
      )
      ON CONFLICT (scope, partition_key, idempotency_key) DO NOTHING;
      IF FOUND THEN
        claimed := true;
        attempt := 1;
        recovery := false;
        RETURN;
      END IF;
      -- Another claim inserted the key first (or cleanup deleted the row we locked): read it.
      locked := false;
      CONTINUE;
    END IF;

    -- The claim rule.
    IF existing.state = 'in_progress' AND existing.lease_expires_at > now() THEN
      claimable := false;
    ELSIF existing.expires_at <= now() THEN
      claimable := true;
      next_attempt := 1;
      next_recovery := false;
    ELSIF existing.fingerprint <> p_fingerprint OR existing.state = 'completed' THEN
      claimable := false;
    ELSE
      claimable := true;
      next_attempt := existing.attempt + 1;
      next_recovery := existing.state = 'in_progress';
    END IF;

    IF NOT claimable THEN
      claimed := false;
      state := existing.state;
      fingerprint := existing.fingerprint;
      attempt := existing.attempt;
      recovery := existing.recovery;
      lease_remaining_ms := extract(epoch FROM (existing.lease_expires_at - now())) * 1000;
      expires_in_ms := extract(epoch FROM (existing.expires_at - now())) * 1000;
      outcome := existing.outcome;
      payload := existing.payload;
      RETURN;
    END IF;

    IF NOT locked THEN
      -- Claimable as read: lock the row, and decide again on its latest version.
      locked := true;
      CONTINUE;
    END IF;

    UPDATE :BULWARK_IDEMPOTENCY_TABLE AS k SET
      fingerprint = p_fingerprint,
      state = 'in_progress',
      owner_token = p_owner,
      attempt = next_attempt,
      recovery = next_recovery,
      lease_expires_at = now() + p_lease_ms * interval '1 millisecond',
      outcome = NULL,
      payload = NULL,
      completed_at = NULL,
      created_at = CASE WHEN next_attempt = 1 THEN now() ELSE k.created_at END,
      updated_at = now(),
      expires_at = now() + greatest(p_ttl_ms, p_lease_ms) * interval '1 millisecond'
    WHERE k.scope = p_scope AND k.partition_key = p_partition AND k.idempotency_key = p_key;
    claimed := true;
    attempt := next_attempt;
    recovery := next_recovery;
    RETURN;
  END LOOP;
  RAISE EXCEPTION ':BULWARK_IDEMPOTENCY_TABLE_claim_one: no consistent answer (is the session''s isolation level above READ COMMITTED?)';
END
$$;

-- The single claim: the store's one-key call (its signature is what every table made before 0005 has too). The call
-- is an expression, not a SELECT … FROM: PL/pgSQL evaluates it without materializing a result set, so the extra call
-- adds a microsecond or two of server time to a claim (a SELECT … FROM added about four).
CREATE OR REPLACE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_claim(
  p_scope text, p_partition text, p_key text, p_fingerprint text, p_owner text, p_lease_ms float8, p_ttl_ms float8,
  OUT claimed boolean, OUT state text, OUT fingerprint text, OUT attempt integer, OUT recovery boolean,
  OUT lease_remaining_ms float8, OUT expires_in_ms float8, OUT outcome text, OUT payload text
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  c record;
BEGIN
  c := :BULWARK_IDEMPOTENCY_TABLE_claim_one(p_scope, p_partition, p_key, p_fingerprint, p_owner, p_lease_ms, p_ttl_ms);
  claimed := c.claimed;
  state := c.state;
  fingerprint := c.fingerprint;
  attempt := c.attempt;
  recovery := c.recovery;
  lease_remaining_ms := c.lease_remaining_ms;
  expires_in_ms := c.expires_in_ms;
  outcome := c.outcome;
  payload := c.payload;
END
$$;

-- The batch claim: every element in array order, within one statement (see 0004 for the order and duplicates).
CREATE OR REPLACE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_claim_batch(
  p_scopes text[], p_partitions text[], p_keys text[], p_fingerprints text[], p_owners text[],
  p_lease_ms float8[], p_ttl_ms float8[]
) RETURNS TABLE (
  ordinal integer, claimed boolean, state text, fingerprint text, attempt integer, recovery boolean,
  lease_remaining_ms float8, expires_in_ms float8, outcome text, payload text
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  FOR i IN 1..coalesce(array_length(p_keys, 1), 0) LOOP
    RETURN QUERY SELECT i, c.claimed, c.state, c.fingerprint, c.attempt, c.recovery, c.lease_remaining_ms,
      c.expires_in_ms, c.outcome, c.payload
    FROM :BULWARK_IDEMPOTENCY_TABLE_claim_one(
      p_scopes[i], p_partitions[i], p_keys[i], p_fingerprints[i], p_owners[i], p_lease_ms[i], p_ttl_ms[i]
    ) AS c;
  END LOOP;
END
$$;
