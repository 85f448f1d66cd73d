-- Recurring jobs (JobSchedule, SqlJobSchedule): one row per schedule name, shared by every process that runs it.
--
-- A scheduler advances a schedule in one transaction: it locks the row (INSERT … ON CONFLICT DO UPDATE, which also
-- creates it the first time), enqueues the ticks in (last_tick, its now] into bulwark_jobs, and moves last_tick to the
-- newest of them. The lock makes concurrent schedulers take turns, and the shared commit means a tick's job and the
-- last_tick that says it was enqueued exist together or not at all: each tick is enqueued exactly once.
--
--   name         the schedule's name (JobSchedule.cron's `name`)
--   cron         its expression, for operators (the schedulers' own definitions decide the ticks)
--   time_zone    the zone the expression is read in (UTC, Europe/Paris, +02:00)
--   known_since  when a scheduler first ran it: no earlier tick is ever enqueued, whatever the backfill window
--   last_tick    the newest tick enqueued (NULL before the first)
--   next_run     the next tick, as of the last advance
--   updated_at   the last advance (on the scheduler's clock): an old one means no scheduler is running
-- Times come from the schedulers' clocks, as the ticks do.

CREATE TABLE bulwark_job_schedules (
  name        text        PRIMARY KEY,
  cron        text        NOT NULL,
  time_zone   text        NOT NULL,
  known_since timestamptz NOT NULL,
  last_tick   timestamptz,
  next_run    timestamptz,
  updated_at  timestamptz NOT NULL
);
