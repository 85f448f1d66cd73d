-- Retention for durable jobs (JobQueue.prune / JobQueue.layerRetention).
--
-- Pruning deletes succeeded jobs finished before a cutoff, and settled (replayed or discarded) dead-letter entries
-- settled before a cutoff together with their dead job rows, oldest first in bounded batches. These partial indexes
-- let each batch read only finished rows, in cutoff order, instead of scanning the tables; their expressions must
-- match the statement in packages/resilience/src/job-queue/internal/sqlStore.ts (prune).

CREATE INDEX bulwark_jobs_succeeded ON bulwark_jobs (finished_at) WHERE state = 'succeeded';
CREATE INDEX bulwark_dead_letters_settled ON bulwark_dead_letters ((coalesce(replayed_at, discarded_at)))
  WHERE status <> 'pending';
