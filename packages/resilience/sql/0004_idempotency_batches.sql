-- Batched claims and completions (SqlIdempotencyStore batches concurrent calls into one round trip).
--
-- Each function applies the one-key function to every element, in array order, within one statement. The store
-- sends each batch sorted by (scope, partition_key, idempotency_key): two batches that lock the same rows lock
-- them in the same order, so concurrent batches cannot deadlock. A key that appears twice in one batch is claimed
-- by its first element; the second sees that claim (a VOLATILE function's statements see the earlier ones' writes).
-- 0005_idempotency_claim_one.sql replaces the claim batch's body: it calls :BULWARK_IDEMPOTENCY_TABLE_claim_one.

CREATE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_claim_batch(
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
    FROM :BULWARK_IDEMPOTENCY_TABLE_claim(
      p_scopes[i], p_partitions[i], p_keys[i], p_fingerprints[i], p_owners[i], p_lease_ms[i], p_ttl_ms[i]
    ) AS c;
  END LOOP;
END
$$;

CREATE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_complete_batch(
  p_scopes text[], p_partitions text[], p_keys text[], p_owners text[], p_attempts integer[], p_outcomes text[],
  p_payloads text[], p_ttl_ms float8[]
) RETURNS TABLE (ordinal integer, written boolean) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  FOR i IN 1..coalesce(array_length(p_keys, 1), 0) LOOP
    ordinal := i;
    written := :BULWARK_IDEMPOTENCY_TABLE_complete(
      p_scopes[i], p_partitions[i], p_keys[i], p_owners[i], p_attempts[i], p_outcomes[i], p_payloads[i], p_ttl_ms[i]
    );
    RETURN NEXT;
  END LOOP;
END
$$;
