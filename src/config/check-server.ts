/** Process and store settings that only make sense together. */
import type { Check } from './check.js'

export const serverChecks: Check[] = [
  {
    needs: [
      ['server', 'requestTimeout'],
      ['server', 'headersTimeout'],
    ],
    run({ server }, report) {
      // Node refuses to start a server with this combination (ERR_OUT_OF_RANGE): say so here.
      if (server.requestTimeout > 0 && server.headersTimeout > server.requestTimeout) {
        report.problem(['server', 'headersTimeout'], 'must not be longer than server.requestTimeout (the head is part of the request)')
      }
    },
  },
  {
    needs: [['store']],
    run({ store }, report) {
      if (store.type === 'redis-cluster' && store.nodes.length === 0) {
        report.problem(['store', 'nodes'], 'must list at least one node when store.type is redis-cluster')
      }
      if (store.type === 'redis-sentinel' && store.sentinels.length === 0) {
        report.problem(['store', 'sentinels'], 'must list at least one sentinel when store.type is redis-sentinel')
      }
      // Redis Cluster hashes only what lies between the first "{" and the next "}": a brace in
      // the prefix would move every key's hash tag and split a session script across slots.
      if (/[{}]/.test(store.keyPrefix)) {
        report.problem(['store', 'keyPrefix'], 'must not contain "{" or "}": they would change the Redis Cluster hash tags the store relies on')
      }
    },
  },
  {
    needs: [
      ['server', 'workers'],
      ['store', 'type'],
      ['auth', 'keys'],
    ],
    run({ server, store, auth }, report) {
      if (server.workers === 1) return
      // Each worker is its own process: a memory store would give each its own sessions and
      // revocations, and an ephemeral key would make each reject the others' tokens.
      if (store.type === 'memory') {
        report.problem(
          ['server', 'workers'],
          'more than one worker needs a shared store: set store.type to redis, redis-cluster or redis-sentinel (the memory store lives inside one process)',
        )
      }
      if (!auth.keys) {
        report.problem(['server', 'workers'], 'more than one worker needs auth.keys: each worker would otherwise sign with its own ephemeral key')
      }
    },
  },
  {
    needs: [
      ['store', 'type'],
      ['auth', 'keys'],
    ],
    run({ store, auth }, report) {
      if (store.type !== 'memory' && !auth.keys) {
        report.warning(
          ['auth'],
          'has no keys, so each gateway instance signs with its own ephemeral key: tokens from one instance fail at the others sharing the store',
        )
      }
    },
  },
]
