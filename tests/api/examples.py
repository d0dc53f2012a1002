"""Valid specs taken from the runbooks the project automates, as users would write them."""

from typing import Any

import yaml

DATABASE_FIRST_AID = """
severity: SEV2
summary: Database connections exhausted, queries piling up on portfolios
runbookRef: {name: database-first-aid}
steps:
  - name: record-activity
    database:
      connectionSecretRef: {name: portfolio-db}
      report: {topN: 20}
  - name: cancel-long-queries
    database:
      connectionSecretRef: {name: portfolio-db, key: uri}
      cancelLongRunning: {olderThan: 5m, usernames: [app]}
  - name: kill-idle-connections
    requiresApproval: true
    database:
      connectionSecretRef: {name: portfolio-db}
      maxTerminations: 20
      terminateIdle: {idleFor: 10m, includeIdleInTransaction: true}
  - name: vacuum
    timeout: 30m
    database:
      connectionSecretRef: {name: portfolio-db}
      statementTimeout: 30m
      vacuumAnalyze: {tables: [portfolios, public.users]}
  - name: reindex
    onFailure: continue
    database:
      connectionSecretRef: {name: portfolio-db}
      reindex: {table: portfolios}
  - name: check
    database:
      connectionSecretRef: {name: portfolio-db}
      healthCheck: {maxReplicationLag: 30s}
"""

BAD_DEPLOY_ROLLED_BACK = """
severity: P0
summary: Checkout returns 500 after release 2024.11.3
escalateAfter: 10m
cooldown: 30m
steps:
  - name: roll-back
    timeout: 20m
    retries: 1
    rollback:
      target: {kind: Deployment, name: shop-api}
      stopApplication: true
      rolloutTimeout: 15m
      migrationJob:
        image: ghcr.io/example/shop-migrate:2024.11.2
        args: [db, rollback, --to, "20241101"]
        env:
          - {name: LOG_LEVEL, value: info}
          - name: DATABASE_URL
            valueFrom: {secretKeyRef: {name: shop-db, key: uri}}
        resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 1Gi}}
        activeDeadlineSeconds: 600
  - name: wait
    waitForRollout: {target: {kind: Deployment, name: shop-api}}
  - name: verify
    httpCheck:
      url: https://shop.example.com/api/health
      bodyContains: '"status":"ok"'
      successThreshold: 3
  - name: tell-the-team
    notify:
      webhookSecretRef: {name: chat-webhook, key: url}
      message: shop-api rolled back to the previous release
"""

SCALE_UP = """
severity: P1
summary: Latency above SLO under load
steps:
  - name: scale-up
    scale:
      target: {kind: Deployment, name: api}
      factor: 2
      maxReplicas: 20
      maxFactor: 3
  - name: restart-stuck-workers
    restart:
      target: {kind: StatefulSet, name: workers}
      mode: deletePods
      selector: {matchLabels: {app: workers}, matchExpressions: [{key: tier, operator: In, values: [queue]}]}
      maxUnavailable: 25%
"""

HIGH_ERROR_RATE_RUNBOOK = """
description: Restart the API and verify when the error rate is high
triggers:
  - alertname: HighErrorRate
    matchers:
      - {name: severity, value: critical}
      - {name: service, value: "api|gateway", op: "=~"}
defaults:
  severity: SEV2
  requiresApproval: false
  cooldown: 15m
steps:
  - name: restart
    restart: {target: {kind: Deployment, name: api}}
  - name: verify
    httpCheck: {url: "http://api.shop.svc/healthz", interval: 10s}
  - name: rotate
    requiresApproval: true
    rotateKey: {keyRotationRef: {name: api-keys}}
"""

ROLLBACK_REQUEST = """
target: {kind: Deployment, name: shop-api}
toRevision: 41
stopApplication: true
migrationJob: {image: "ghcr.io/example/shop-migrate:41", command: [migrate, down]}
incidentRef: {name: checkout-500}
"""

QUARTERLY_KEY_ROTATION = """
secretRef: {name: shop-keys}
keys:
  - key: SESSION_SECRET
  - key: ENCRYPTION_KEY
    generator: {length: 64, encoding: hex}
  - key: DB_PASSWORD
    generator: {type: random, length: 40, encoding: alphanumeric}
databaseRole:
  connectionSecretRef: {name: db-admin}
  role: shop_app
  passwordKey: DB_PASSWORD
consumers:
  workloads:
    - {kind: Deployment, name: shop-api}
    - {kind: StatefulSet, name: workers}
verify:
  - {url: "https://shop.example.com/api/selftest", successThreshold: 2}
gracePeriod: 24h
schedule: "0 3 1 */3 *"
"""


def load(text: str) -> dict[str, Any]:
    """Return the YAML example as the dict Kubernetes would store."""
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded
