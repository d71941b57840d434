/** Prometheus metrics of a node (served at GET /metrics). One registry per node instance. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface NodeMetrics {
  registry: Registry;
  trxAccepted: Counter<'type'>;
  trxRejected: Counter<'reason'>;
  trxCommitted: Counter<'type'>;
  blocks: Counter<'role'>;
  mempoolSize: Gauge;
  commitLatency: Histogram;
  apiRequests: Counter<'method' | 'route' | 'status'>;
}

/** Reasons are bucketed so a hostile peer cannot create unbounded label values. */
export function reasonLabel(reason: string): string {
  const r = reason.toLowerCase();
  if (r.includes('signature')) return 'signature';
  if (r.includes('deny') || r.includes('allow') || r.includes('owner')) return 'auth';
  if (r.includes('duplicate') || r.includes('twice') || r.includes('repeats')) return 'duplicate';
  if (r.includes('expired')) return 'expired';
  if (r.includes('limit') || r.includes('bytes') || r.includes('too many') || r.includes('full'))
    return 'size';
  return 'invalid';
}

export function createMetrics(mempoolSize: () => number, defaults = true): NodeMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'rum_process_' });
  return {
    registry,
    trxAccepted: new Counter({
      name: 'rum_trx_accepted_total',
      help: 'trxs accepted into the mempool',
      labelNames: ['type'],
      registers: [registry],
    }),
    trxRejected: new Counter({
      name: 'rum_trx_rejected_total',
      help: 'trxs rejected, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    trxCommitted: new Counter({
      name: 'rum_trx_committed_total',
      help: 'trxs committed in blocks',
      labelNames: ['type'],
      registers: [registry],
    }),
    blocks: new Counter({
      name: 'rum_blocks_total',
      help: 'blocks committed (role=produced|applied)',
      labelNames: ['role'],
      registers: [registry],
    }),
    mempoolSize: new Gauge({
      name: 'rum_mempool_size',
      help: 'pending trxs over all groups',
      registers: [registry],
      collect() {
        this.set(mempoolSize());
      },
    }),
    commitLatency: new Histogram({
      name: 'rum_commit_latency_seconds',
      help: 'time from trx timestamp to its commit in a block',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    apiRequests: new Counter({
      name: 'rum_api_requests_total',
      help: 'HTTP API requests',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
  };
}
