-- Idempotency keys (Idempotency.run, SqlIdempotencyStore).
--
-- One row per (scope, partition_key, idempotency_key). States:
--   in_progress  owner_token + attempt hold a lease until lease_expires_at (renewed by heartbeats)
--   completed    outcome + payload hold the stored result, replayed until expires_at
--   released     the last attempt gave up (transient failure): the next claim runs again
-- Every write after the claim is fenced by (owner_token, attempt). Times are the server's now().
--
-- The store calls the functions below, one per operation, rather than sending the statements: PL/pgSQL keeps
-- each statement's plan for the session, and planning was over half the cost of the claim sent as SQL text.
--
-- Names are placeholders, replaced before the text runs (src/sql/internal/migrations.ts): :BULWARK_IDEMPOTENCY_TABLE
-- is the table, optionally schema-qualified (bulwark_idempotency_keys for Migrations.run, another validated name for
-- SqlIdempotencyStore.createTable), and names its functions; :BULWARK_IDEMPOTENCY_TABLE_NAME is the same name
-- without its schema, for constraints and indexes.

CREATE TABLE :BULWARK_IDEMPOTENCY_TABLE (
  scope            text        NOT NULL,
  partition_key    text        NOT NULL DEFAULT '',
  idempotency_key  text        NOT NULL,
  fingerprint      text        NOT NULL,
  state            text        NOT NULL,
  owner_token      text,
  attempt          integer     NOT NULL,
  recovery         boolean     NOT NULL DEFAULT false,
  lease_expires_at timestamptz,
  outcome          text,
  payload          text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz,
  expires_at       timestamptz NOT NULL,
  PRIMARY KEY (scope, partition_key, idempotency_key),
  CONSTRAINT :BULWARK_IDEMPOTENCY_TABLE_NAME_state CHECK (state IN ('in_progress', 'completed', 'released')),
  CONSTRAINT :BULWARK_IDEMPOTENCY_TABLE_NAME_outcome CHECK (outcome IN ('success', 'failure', 'too_large', 'unencodable')),
  CONSTRAINT :BULWARK_IDEMPOTENCY_TABLE_NAME_attempt CHECK (attempt >= 1),
  CONSTRAINT :BULWARK_IDEMPOTENCY_TABLE_NAME_in_progress CHECK (
    (state = 'in_progress') = (owner_token IS NOT NULL AND lease_expires_at IS NOT NULL)
  ),
  CONSTRAINT :BULWARK_IDEMPOTENCY_TABLE_NAME_completed CHECK (
    (state = 'completed') = (outcome IS NOT NULL AND payload IS NOT NULL)
  )
);

-- Cleanup deletes expired rows in batches, oldest first.
CREATE INDEX :BULWARK_IDEMPOTENCY_TABLE_NAME_expires_at ON :BULWARK_IDEMPOTENCY_TABLE (expires_at);

-- Claims a key, or says why not. 0005_idempotency_claim_one.sql replaces this body: the claim rule is stated once,
-- in :BULWARK_IDEMPOTENCY_TABLE_claim_one, which this function and the batch claim both call.
--
-- It reads first: a record that is not claimable (completed, in progress with a live lease, another fingerprint)
-- is answered from that read, which takes no lock and writes nothing, so a replay commits without a WAL flush. A
-- completed record cannot change until it expires (its expiry only moves later), so the read is its final answer.
-- Only an absent or claimable record goes to the INSERT … ON CONFLICT DO UPDATE … WHERE <claimable>, the single
-- atomic arbiter: of concurrent claims, exactly one takes the key. A claim that lost the race has locked the
-- winner's row (ON CONFLICT locks it even when the WHERE is false), so the next read sees that row's final
-- version and answers from it.
--
-- Returns claimed = true with the attempt and recovery flag, or claimed = false with the record as read (lease
-- and expiry as milliseconds from now()).
CREATE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_claim(
  p_scope text, p_partition text, p_key text, p_fingerprint text, p_owner text, p_lease_ms float8, p_ttl_ms float8,
  OUT claimed boolean, OUT state text, OUT fingerprint text, OUT attempt integer, OUT recovery boolean,
  OUT lease_remaining_ms float8, OUT expires_in_ms float8, OUT outcome text, OUT payload text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  existing :BULWARK_IDEMPOTENCY_TABLE%ROWTYPE;
BEGIN
  -- Two rounds at most under READ COMMITTED (each statement reads the latest commits); the bound only guards
  -- against a session whose isolation level keeps one snapshot for the whole call.
  FOR tries IN 1..3 LOOP
    SELECT * INTO existing FROM :BULWARK_IDEMPOTENCY_TABLE AS k
    WHERE k.scope = p_scope AND k.partition_key = p_partition AND k.idempotency_key = p_key;
    IF FOUND AND (
      (existing.state = 'in_progress' AND existing.lease_expires_at > now())
      OR (existing.expires_at > now() AND (existing.fingerprint <> p_fingerprint OR existing.state = 'completed'))
    ) THEN
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

    INSERT INTO :BULWARK_IDEMPOTENCY_TABLE AS k (
      scope, partition_key, idempotency_key, fingerprint, state, owner_token, attempt, recovery,
      lease_expires_at, expires_at
    ) VALUES (
      p_scope, p_partition, p_key, p_fingerprint, 'in_progress', p_owner, 1, false,
      now() + p_lease_ms * interval '1 millisecond',
      now() + greatest(p_ttl_ms, p_lease_ms) * interval '1 millisecond'
    )
    ON CONFLICT (scope, partition_key, idempotency_key) DO UPDATE SET
      fingerprint = excluded.fingerprint,
      state = 'in_progress',
      owner_token = excluded.owner_token,
      attempt = CASE WHEN k.expires_at <= now() THEN 1 ELSE k.attempt + 1 END,
      recovery = (k.expires_at > now() AND k.state = 'in_progress'),
      lease_expires_at = excluded.lease_expires_at,
      outcome = NULL,
      payload = NULL,
      completed_at = NULL,
      created_at = CASE WHEN k.expires_at <= now() THEN now() ELSE k.created_at END,
      updated_at = now(),
      expires_at = excluded.expires_at
    WHERE (k.state <> 'in_progress' OR k.lease_expires_at <= now())
      AND (k.expires_at <= now() OR (k.fingerprint = excluded.fingerprint AND k.state <> 'completed'))
    RETURNING k.attempt, k.recovery INTO attempt, recovery;
    IF FOUND THEN
      claimed := true;
      RETURN;
    END IF;
  END LOOP;
  RAISE EXCEPTION ':BULWARK_IDEMPOTENCY_TABLE_claim: no consistent answer (is the session''s isolation level above READ COMMITTED?)';
END
$$;

-- Renews a lease (fenced); false when the lease is no longer the caller's.
CREATE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_heartbeat(
  p_scope text, p_partition text, p_key text, p_owner text, p_attempt integer, p_lease_ms float8
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  UPDATE :BULWARK_IDEMPOTENCY_TABLE AS k SET
    lease_expires_at = now() + p_lease_ms * interval '1 millisecond',
    expires_at = greatest(k.expires_at, now() + p_lease_ms * interval '1 millisecond'),
    updated_at = now()
  WHERE k.scope = p_scope AND k.partition_key = p_partition AND k.idempotency_key = p_key
    AND k.state = 'in_progress' AND k.owner_token = p_owner AND k.attempt = p_attempt;
  RETURN FOUND;
END
$$;

-- Stores the result (fenced) and makes the record expire p_ttl_ms from now; false when fenced.
CREATE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_complete(
  p_scope text, p_partition text, p_key text, p_owner text, p_attempt integer, p_outcome text, p_payload text,
  p_ttl_ms float8
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  UPDATE :BULWARK_IDEMPOTENCY_TABLE AS k SET
    state = 'completed',
    outcome = p_outcome,
    payload = p_payload,
    owner_token = NULL,
    lease_expires_at = NULL,
    completed_at = now(),
    updated_at = now(),
    expires_at = now() + p_ttl_ms * interval '1 millisecond'
  WHERE k.scope = p_scope AND k.partition_key = p_partition AND k.idempotency_key = p_key
    AND k.state = 'in_progress' AND k.owner_token = p_owner AND k.attempt = p_attempt;
  RETURN FOUND;
END
$$;

-- Gives a claim up (fenced): the next claim runs again. False when fenced.
CREATE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_release(
  p_scope text, p_partition text, p_key text, p_owner text, p_attempt integer
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  UPDATE :BULWARK_IDEMPOTENCY_TABLE AS k SET
    state = 'released', owner_token = NULL, lease_expires_at = NULL, updated_at = now()
  WHERE k.scope = p_scope AND k.partition_key = p_partition AND k.idempotency_key = p_key
    AND k.state = 'in_progress' AND k.owner_token = p_owner AND k.attempt = p_attempt;
  RETURN FOUND;
END
$$;
