-- aha run database, schema version 4. One file per run directory: <run_dir>/run.db (WAL).
-- Documented in docs/runlog.md. Every step is one transaction: its metrics, rollouts and
-- rewards land together or not at all.

CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
  id         INTEGER PRIMARY KEY,
  kind       TEXT NOT NULL,           -- grpo | pretrain | distill | eval
  config     TEXT NOT NULL,           -- the full JSON config after --set overrides
  model      TEXT,                    -- the checkpoint the run started from
  started_at TEXT NOT NULL,
  ended_at   TEXT,
  status     TEXT NOT NULL,           -- running | finished | failed | killed
  host       TEXT,
  git_rev    TEXT
);

CREATE TABLE IF NOT EXISTS steps (
  run_id  INTEGER NOT NULL REFERENCES runs(id),
  step    INTEGER NOT NULL,
  time    TEXT NOT NULL,
  metrics TEXT NOT NULL,              -- JSON object: every metric of the step
  PRIMARY KEY (run_id, step)
);

CREATE TABLE IF NOT EXISTS rollouts (
  id            INTEGER PRIMARY KEY,
  run_id        INTEGER NOT NULL REFERENCES runs(id),
  step          INTEGER NOT NULL,
  prompt_id     TEXT NOT NULL,
  group_index   INTEGER NOT NULL,     -- the group (prompt) within the step
  sample_index  INTEGER NOT NULL,     -- the completion within the group
  prompt        TEXT NOT NULL,
  completion    TEXT NOT NULL,
  n_tokens      INTEGER NOT NULL,
  finish_reason TEXT NOT NULL,
  reward        REAL,                 -- weighted total
  advantage     REAL,
  correct       INTEGER,              -- 1/0 from the accuracy reward (NULL: none)
  policy_version INTEGER              -- v6: updates the sampling weights had seen (NULL: unknown)
);
CREATE INDEX IF NOT EXISTS rollouts_by_step ON rollouts(run_id, step);
CREATE INDEX IF NOT EXISTS rollouts_by_prompt ON rollouts(run_id, prompt_id);

CREATE TABLE IF NOT EXISTS rewards (
  rollout_id INTEGER NOT NULL REFERENCES rollouts(id),
  name       TEXT NOT NULL,
  value      REAL,
  details    TEXT,                    -- JSON
  PRIMARY KEY (rollout_id, name)
);

-- Schema v2: token-level records for replay (`aha export-rollouts`). Ids are JSON arrays;
-- logprobs are little-endian float32 blobs (exact), routing int32 [layer][position][k].
CREATE TABLE IF NOT EXISTS rollout_tokens (
  rollout_id     INTEGER PRIMARY KEY REFERENCES rollouts(id),
  prompt_ids     TEXT NOT NULL,       -- JSON array
  completion_ids TEXT NOT NULL,       -- JSON array
  old_logprobs   BLOB,                -- float32 per completion token
  ref_logprobs   BLOB,
  routing        BLOB,                -- int32, moe_layers x positions x K
  routing_layers INTEGER,             -- moe layers in routing (0: none)
  sampling_mask  BLOB,                -- v3, int32 per completion token: count, then the kept ids
  loss_mask      BLOB                 -- v4, uint8 per completion token: 1 policy, 0 observation
                                      --     (NULL: every token is the policy's)
);

-- Schema v4: the turns of multi-turn, tool-using episodes (none for single-turn rollouts).
-- begin_token/end_token: the turn's span [begin, end) of the completion tokens.
CREATE TABLE IF NOT EXISTS rollout_turns (
  rollout_id  INTEGER NOT NULL REFERENCES rollouts(id),
  turn        INTEGER NOT NULL,       -- 0, 1, ... in episode order
  role        TEXT NOT NULL,          -- assistant | tool
  begin_token INTEGER NOT NULL,
  end_token   INTEGER NOT NULL,
  text        TEXT NOT NULL,
  tool        TEXT,                   -- tool turns: the tool's name
  status      TEXT,                   -- tool turns: ok | error | fatal: why
  seconds     REAL,                   -- tool turns: wall time of the call
  reward      REAL,                   -- environment turns: the step's reward (v5)
  PRIMARY KEY (rollout_id, turn)
);

CREATE TABLE IF NOT EXISTS checkpoints (
  run_id     INTEGER NOT NULL REFERENCES runs(id),
  step       INTEGER NOT NULL,
  path       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, step)
);

CREATE TABLE IF NOT EXISTS events (
  id      INTEGER PRIMARY KEY,
  run_id  INTEGER NOT NULL REFERENCES runs(id),
  step    INTEGER,
  time    TEXT NOT NULL,
  level   TEXT NOT NULL,              -- info | warn | error
  kind    TEXT NOT NULL,              -- resume | nan_skip | checkpoint | ...
  message TEXT NOT NULL
);

-- Every metric as a row: SELECT step, value FROM step_metrics WHERE name = 'kl'.
CREATE VIEW IF NOT EXISTS step_metrics AS
  SELECT s.run_id, s.step, j.key AS name, j.value AS value
  FROM steps s, json_each(s.metrics) j
  WHERE j.type IN ('integer', 'real');

CREATE VIEW IF NOT EXISTS reward_curve AS
  SELECT run_id, step,
         json_extract(metrics, '$.reward_mean') AS reward_mean,
         json_extract(metrics, '$.accuracy') AS accuracy,
         json_extract(metrics, '$.kl') AS kl,
         json_extract(metrics, '$.completion_len_mean') AS completion_len_mean
  FROM steps ORDER BY run_id, step;

CREATE VIEW IF NOT EXISTS prompt_pass_rate AS
  SELECT run_id, prompt_id, step, AVG(correct) AS pass_rate, COUNT(*) AS samples
  FROM rollouts WHERE correct IS NOT NULL
  GROUP BY run_id, prompt_id, step;

CREATE VIEW IF NOT EXISTS hardest_prompts AS
  SELECT run_id, prompt_id, AVG(correct) AS pass_rate, COUNT(*) AS samples,
         MIN(prompt) AS prompt
  FROM rollouts WHERE correct IS NOT NULL
  GROUP BY run_id, prompt_id
  ORDER BY pass_rate ASC, samples DESC;

CREATE VIEW IF NOT EXISTS longest_completions AS
  SELECT run_id, step, prompt_id, sample_index, n_tokens, finish_reason, reward, completion
  FROM rollouts ORDER BY n_tokens DESC;

-- metrics.expert_load is [[tokens per expert] per MoE layer].
CREATE VIEW IF NOT EXISTS expert_load AS
  SELECT s.run_id, s.step, CAST(l.key AS INTEGER) AS moe_layer, CAST(e.key AS INTEGER) AS expert,
         e.value AS tokens
  FROM steps s, json_each(s.metrics, '$.expert_load') l, json_each(l.value) e;

-- One row per (completion, reward): its score, the weight the run gave that reward (runs.config
-- rewards[].weight, 1 when unset) and the weighted share of the completion's total reward.
-- SELECT * FROM reward_breakdown WHERE rollout_id = 42;
CREATE VIEW IF NOT EXISTS reward_breakdown AS
  SELECT r.run_id, r.id AS rollout_id, r.step, r.prompt_id, r.group_index, r.sample_index,
         w.name AS reward, w.value,
         COALESCE(json_extract(c.value, '$.weight'), 1.0) AS weight,
         w.value * COALESCE(json_extract(c.value, '$.weight'), 1.0) AS weighted,
         r.reward AS total, w.details
  FROM rollouts r
  JOIN rewards w ON w.rollout_id = r.id
  JOIN runs ON runs.id = r.run_id
  LEFT JOIN json_each(runs.config, '$.rewards') c
    ON COALESCE(json_extract(c.value, '$.label'), json_extract(c.value, '$.name')) = w.name;
