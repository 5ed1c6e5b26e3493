"""The ``mloop.yaml`` that ``mloop init`` writes: every section with its defaults and a comment on each
(``str.format`` fields: ``{project}``; literal braces doubled)."""

CONFIG_TEMPLATE = """\
# mloop project settings. Every value can be overridden by an environment variable
# MLOOP_<NAME> (for example MLOOP_METADATA_URL). Secrets (MLOOP_API_KEY, passwords)
# come only from the environment; refer to one here as ${{NAME}}.

# Project name: every object is stored under it, so several projects can share one metadata store.
project: {project}

# Metadata store (experiments, runs, models, deployments, users, audit events).
#   embedded default: sqlite:///.mloop/mloop.db (WAL mode)
#   team server:      postgresql+psycopg://mloop:${{PGPASSWORD}}@db.internal:5432/mloop
metadata_url: sqlite:///.mloop/mloop.db

# Artifact store (models and other blobs, content-addressed by sha256):
# a folder, or any fsspec URL such as s3://bucket/mloop (pip install 'mloop[s3]').
artifact_url: .mloop/artifacts

# Ingested datasets (Parquet, partitioned by date) and their quarantine files: a folder, or
# s3://bucket/prefix (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
data_url: .mloop/data

# Online feature store, for serving: a SQLite file (default) or a Redis server
# (redis://redis.internal:6379/0, pip install 'mloop[redis]').
online_url: .mloop/online.db
# Redis only: how long a serving read may wait for it (connect, then answer) before the request is
# answered 503, or with the declared defaults of views with on_missing: default.
online_timeout_ms: 200

# Model registry: when true, promoting a model version to production waits until a second user
# with the mlops role approves it (mloop models approve NAME VERSION).
require_approval: false

# Local use (CLI and Python without an API key) runs as this user, with the admin role.
# On a shared server set local_admin: false and give everyone an API key (MLOOP_API_KEY).
local_user: local-admin
local_admin: true

# Logs: DEBUG, INFO, WARNING or ERROR; format auto (coloured on a terminal, JSON lines otherwise),
# json or console.
log_level: INFO
log_format: auto

# The inference service (mloop serve). Requests in flight per worker beyond max_concurrency, and new
# requests while the worker's event loop stays more than max_queue_ms behind, are shed with 503;
# rate_limit is requests per second per API key (429 + Retry-After), counted in each server process,
# or across every replica when rate_limit_url is redis://host:6379/0; max_batch_size > 1 groups
# concurrent requests into one model call, waiting at most max_wait_ms; cache_size > 0 caches answers.
# metrics_auth: whether GET /metrics needs an API key (null: when local_admin is false); explain_priority:
# idle or normal, for the child that explains sampled answers (docs/explain.md). timeout_ms: a model call
# past it answers 504 (a deployment's timeout_ms option replaces it per endpoint; null: no limit).
serving:
  max_concurrency: 64
  max_queue_ms: 10.0
  max_body_bytes: 1048576
  rate_limit: null
  rate_limit_url: null
  max_batch_size: 1
  max_wait_ms: 2.0
  cache_size: 0
  timeout_ms: null
  metrics_auth: null
  explain_priority: idle

# Monitoring (mloop monitor ...): drift and performance over tumbling windows of the prediction log,
# recomputed for label_horizon as late labels arrive; SLOs per endpoint; alert sinks (none: the log),
# e.g. [{{kind: webhook, url: "https://..."}}, {{kind: alertmanager, url: "http://am:9093"}}].
# See docs/monitoring.md.
monitoring:
  window: 1h
  label_horizon: 7d
  sinks: []
  endpoints: {{}}
  # endpoints:
  #   fraud:
  #     drift: {{thresholds: {{psi: 0.2}}}}
  #     performance: {{slices: [channel], metrics: {{roc_auc: 0.85}}}}
  #     slos:
  #       - {{kind: latency, target: 0.99, threshold_ms: 50}}
  #       - {{kind: availability, target: 0.999}}
  #       - {{kind: quality, metric: roc_auc, min: 0.85, window: 1d}}

# Where training runs, search trials, batch scoring and materialization run: inprocess (default),
# process (a local pool), ray (a local Ray started on demand; pip install 'mloop[ray]'), ray:HOST:PORT
# (join a Ray cluster at its GCS address) or ray://HOST:PORT (Ray Client). The rest is what each Ray
# task reserves, and how often a task whose node died is rerun. See docs/deploy.md.
compute:
  executor: inprocess
  cpus_per_task: 1.0
  memory_per_task: null
  gpus_per_task: 0.0
  max_retries: 2

# The continuous-training loop (mloop loop run | tick): per endpoint, a training pipeline (an import
# path), its triggers, the gate, the canary rollout. See docs/loop.md.
loop:
  interval_seconds: 30.0
  lease_seconds: 60.0
  policies: []
  # policies:
  #   - endpoint: fraud
  #     pipeline: my_project.pipelines:fraud
  #     triggers: [{{schedule: "0 3 * * *"}}, {{drift: {{psi: 0.2, features: "top:5"}}}}]
  #     gate: {{metric: auc, min_gain: 0.0, max_latency_ms: 20}}
  #     rollout: {{steps: [0.05, 0.25, 1.0], min_requests: 500, max_error_rate: 0.01}}
"""
