/* SPDX-License-Identifier: MIT */

/*
 * The schema, as an ordered list of migrations. PRAGMA user_version holds how
 * many have run; store_open() runs the rest, each in its own transaction.
 * Never edit a migration that has shipped: add the next one.
 * docs/internals/store-schema.md explains the tables.
 */

#include "store/store_int.h"

static const char *const migrations[] = {
    /* 1: the foundation. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE journal ("
    "  seq INTEGER PRIMARY KEY,"
    "  system TEXT NOT NULL,"
    "  delivery_id TEXT,"
    "  received_at INTEGER NOT NULL,"
    "  body BLOB NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  note TEXT);"
    "CREATE UNIQUE INDEX journal_delivery ON journal(system, delivery_id)"
    "  WHERE delivery_id IS NOT NULL;"
    "CREATE INDEX journal_new ON journal(seq) WHERE state = 0;"
    "CREATE TABLE records ("
    "  id INTEGER PRIMARY KEY,"
    "  model TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE versions ("
    "  record_id INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"
    "  diff TEXT,"
    "  source TEXT NOT NULL,"
    "  journal_seq INTEGER,"
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY (record_id, version)) WITHOUT ROWID;"
    "CREATE TABLE links ("
    "  id INTEGER PRIMARY KEY,"
    "  collection TEXT NOT NULL,"
    "  record_id INTEGER NOT NULL,"
    "  ext_id TEXT,"
    "  base TEXT,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX links_ext ON links(collection, ext_id) WHERE ext_id IS NOT NULL;"
    "CREATE UNIQUE INDEX links_record ON links(collection, record_id);"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT," /* ids are never reused: attempts name them */
    "  link_id INTEGER NOT NULL,"
    "  record_id INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  system TEXT NOT NULL,"
    "  collection TEXT NOT NULL,"
    "  op INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX jobs_due ON jobs(next_at, id) WHERE state = 1;"
    "CREATE INDEX jobs_link ON jobs(link_id, state);"
    "CREATE INDEX jobs_system ON jobs(system, state);"
    "CREATE TABLE attempts ("
    "  job_id INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  http_status INTEGER,"
    "  request TEXT,"
    "  response TEXT,"
    "  elapsed_ms INTEGER,"
    "  PRIMARY KEY (job_id, n)) WITHOUT ROWID;"
    "CREATE TABLE inbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'open',"
    "  system TEXT,"
    "  collection TEXT,"
    "  record_id INTEGER,"
    "  job_id INTEGER,"
    "  journal_seq INTEGER,"
    "  reason TEXT NOT NULL,"
    "  http_status INTEGER,"
    "  response TEXT,"
    "  attempts INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX inbox_state ON inbox(state, system);"
    "CREATE TABLE system_state ("
    "  system TEXT PRIMARY KEY,"
    "  last_success_at INTEGER,"
    "  last_error_at INTEGER,"
    "  last_error TEXT) WITHOUT ROWID;",

    /* 2: the Delivery issue: priorities, replays, operator actions, pauses. */
    "ALTER TABLE journal ADD COLUMN collection TEXT;"
    "ALTER TABLE journal ADD COLUMN ext_id TEXT;"
    "ALTER TABLE journal ADD COLUMN replay INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX journal_copy ON journal(collection, ext_id, seq) WHERE ext_id IS NOT NULL;"
    "CREATE INDEX journal_time ON journal(received_at);"
    "ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN sent_version INTEGER;"
    "DROP INDEX jobs_due;"
    "CREATE INDEX jobs_due ON jobs(priority, next_at, id) WHERE state = 1;"
    "ALTER TABLE inbox ADD COLUMN resolved_by TEXT;"
    "ALTER TABLE inbox ADD COLUMN note TEXT;"
    "ALTER TABLE system_state ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE system_state ADD COLUMN paused_by TEXT;"
    "ALTER TABLE system_state ADD COLUMN breaker TEXT;"
    "ALTER TABLE system_state ADD COLUMN breaker_reason TEXT;"
    "ALTER TABLE system_state ADD COLUMN breaker_at INTEGER;",

    /* 3: the next due job without a scan (the writer asks every turn). */
    "CREATE INDEX jobs_next ON jobs(next_at) WHERE state = 1;",

    /* 4: the Two-way issue: field times, past writes, deleted copies,
     * natural keys, conflicts. */
    "ALTER TABLE records ADD COLUMN field_meta TEXT;"
    "ALTER TABLE links ADD COLUMN recent TEXT;"
    "ALTER TABLE links ADD COLUMN gone_ext_id TEXT;"
    "CREATE INDEX links_gone ON links(collection, gone_ext_id) WHERE gone_ext_id IS NOT NULL;"
    "CREATE TABLE record_keys ("
    "  model TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  record_id INTEGER NOT NULL,"
    "  PRIMARY KEY (model, name, value, record_id)) WITHOUT ROWID;"
    "CREATE INDEX record_keys_record ON record_keys(record_id);"
    "ALTER TABLE inbox ADD COLUMN field TEXT;"
    "ALTER TABLE inbox ADD COLUMN detail TEXT;"
    "CREATE INDEX inbox_conflict ON inbox(record_id, field) WHERE state = 'open';"
    "CREATE INDEX records_deleted ON records(updated_at) WHERE deleted = 1;",

    /* 5: the Scheduled-sync issue: each polled collection's cursor and state. */
    "CREATE TABLE polls ("
    "  collection TEXT PRIMARY KEY,"
    "  cursor TEXT,"
    "  next_at INTEGER NOT NULL DEFAULT 0,"
    "  last_ok_at INTEGER,"
    "  last_error TEXT,"
    "  last_error_at INTEGER,"
    "  rows_read INTEGER NOT NULL DEFAULT 0,"
    "  progress TEXT,"
    "  report TEXT,"
    "  reconcile_at INTEGER NOT NULL DEFAULT 0,"
    "  lease_until INTEGER,"
    "  lease_holder TEXT) WITHOUT ROWID;",

    /* 6: the Connectors issue: each OAuth2 system's tokens. */
    "CREATE TABLE oauth_tokens ("
    "  system TEXT PRIMARY KEY,"
    "  access_token TEXT,"
    "  expires_at INTEGER NOT NULL DEFAULT 0,"
    "  refresh_token TEXT,"
    "  seed TEXT,"
    "  updated_at INTEGER NOT NULL) WITHOUT ROWID;",

    /* 7: numbered creates (SmartBill invoices): the number a create expects. */
    "ALTER TABLE jobs ADD COLUMN expect TEXT;",

    /* 8: the audit log of operators' actions (store_audit.c). */
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  who TEXT NOT NULL,"
    "  via TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT,"
    "  detail TEXT);",

    /* 9: the Operate issue: when each system's last webhook came. */
    "ALTER TABLE system_state ADD COLUMN last_webhook_at INTEGER;",

    /* 10: the Workflow issue: automation runs, keyed by what started them,
     * and each action's outcome (store_automation.c). */
    "CREATE TABLE automation_runs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  automation TEXT NOT NULL,"
    "  record_id INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  model TEXT NOT NULL,"
    "  depth INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL,"
    "  step INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL DEFAULT 0,"
    "  context TEXT NOT NULL,"
    "  note TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX automation_runs_key ON automation_runs(automation, record_id, version);"
    "CREATE INDEX automation_runs_due ON automation_runs(next_at)"
    "  WHERE state IN ('running', 'waiting');"
    "CREATE INDEX automation_runs_record ON automation_runs(record_id, state);"
    "CREATE TABLE automation_steps ("
    "  run_id INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  outcome TEXT,"
    "  http_status INTEGER,"
    "  journal_seq INTEGER,"
    "  inbox_id INTEGER,"
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY (run_id, n)) WITHOUT ROWID;"
    "CREATE INDEX automation_steps_seq ON automation_steps(journal_seq)"
    "  WHERE journal_seq IS NOT NULL;"
    "CREATE INDEX automation_steps_inbox ON automation_steps(inbox_id)"
    "  WHERE inbox_id IS NOT NULL;",
    /* 11: the calendar kinds' push registrations (store_push.c): Google watch
     * channels and Graph subscriptions, kept so a restart neither leaks
     * nor forgets one. */
    "CREATE TABLE push_channels ("
    "  system TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  resource_id TEXT,"
    "  secret TEXT NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (system, id)) WITHOUT ROWID;",

    /* 12: due jobs by system: a claim asks each system with free slots for
     * as many as it can take, instead of reading past the jobs of systems
     * that are full. */
    "DROP INDEX jobs_due;"
    "CREATE INDEX jobs_due ON jobs(system, priority, next_at, id) WHERE state = 1;",

    /* 13: retention of finished automation runs (store_retention_prune_runs()):
     * the oldest finished ones, found without reading the others. */
    "CREATE INDEX automation_runs_finished"
    "  ON automation_runs(updated_at)"
    "  WHERE state IN ('done', 'cancelled', 'skipped');",

    /* 14: fewer index writes per job (a job is written three times: made,
     * claimed, done). jobs_next goes: the next due time is read from
     * jobs_due, one seek per system and priority. jobs_link loses its
     * state, so a claim does not move its entry; jobs_system keeps only the
     * jobs in flight: the pending ones are counted in jobs_due. */
    "DROP INDEX jobs_next;"
    "DROP INDEX jobs_link;"
    "CREATE INDEX jobs_link ON jobs(link_id);"
    "DROP INDEX jobs_system;"
    "CREATE INDEX jobs_running ON jobs(system) WHERE state = 2;",

    /* 15: link and run ids are never reused. Keys sent out are built from
     * them (Idempotency-Key concord-<link>-<version>, a CalDAV uid,
     * concord-run-<run>-<step>), and SQLite gives a deleted top row's id
     * to the next row: a record made after `concord forget` would send
     * the forgotten one's create key and be linked to its copy. Deleting
     * the top row keeps its id in meta (links_floor, runs_floor), in the
     * same statement; the INSERTs take the next id above it while it is
     * there (STORE_NEXT_ID). Ids deleted before this migration are not
     * known: none is kept for them. */
    "CREATE TRIGGER links_floor BEFORE DELETE ON links"
    "  WHEN old.id >= (SELECT max(id) FROM links) BEGIN"
    "  INSERT INTO meta (key, value) VALUES ('links_floor', old.id)"
    "    ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    "    WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER);"
    "  END;"
    "CREATE TRIGGER runs_floor BEFORE DELETE ON automation_runs"
    "  WHEN old.id >= (SELECT max(id) FROM automation_runs) BEGIN"
    "  INSERT INTO meta (key, value) VALUES ('runs_floor', old.id)"
    "    ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    "    WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER);"
    "  END;",

    /* 16: the store's own part of every idempotency key. Keys are made of
     * a link's row id and a version, which a new store counts from 1
     * again: without it, a new store's first create would be answered
     * with an old store's copy (Oblio keeps keys; Stripe for 24 h; Google
     * event ids forever), and so would its first automation run's action.
     * A store that has links or runs already keeps the keys it made (''),
     * so a create or an action in doubt is settled under the key it was
     * sent with. */
    "INSERT OR IGNORE INTO meta (key, value) SELECT 'idempotency_prefix',"
    "  CASE WHEN EXISTS (SELECT 1 FROM links) OR EXISTS (SELECT 1 FROM automation_runs)"
    "  THEN '' ELSE lower(hex(randomblob(5))) END;",
};

int
store_schema_count(void)
{
    return (int)ARRAY_COUNT(migrations);
}

const char *
store_schema_migration(int n)
{
    return migrations[n];
}
