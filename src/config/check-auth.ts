/** Sign-in settings: unique usernames and provider names, usable token lifetimes. */
import { reportDuplicates, type Check } from './check.js'
import { oidcChecks } from './check-oidc.js'
import { formatDuration } from './duration.js'

export const authChecks: Check[] = [
  ...oidcChecks,
  {
    needs: [['auth', 'identity']],
    run({ auth }, report) {
      auth.identity.forEach((source, s) => {
        // Two entries for one username: which password counts would depend on the order.
        if (source.type !== 'static' || !report.clean(['auth', 'identity', s, 'type'])) return
        const at = (i: number) => ['auth', 'identity', s, 'users', i, 'username']
        reportDuplicates(
          source.users,
          (u, i) => (report.clean(at(i)) ? u.username : undefined),
          (i, first, name) => report.problem(at(i), `"${name}" is already users[${first}] of this source`),
        )
      })
    },
  },
  {
    needs: [
      ['auth', 'accessTokenTtl'],
      ['auth', 'refreshTokenTtl'],
      ['auth', 'sessionMaxAge'],
    ],
    run({ auth }, report) {
      // A zero lifetime would mint tokens or sessions that are dead on arrival.
      for (const key of ['accessTokenTtl', 'refreshTokenTtl', 'sessionMaxAge'] as const) {
        if (auth[key] === 0) report.problem(['auth', key], 'must be longer than 0')
      }
      if (auth.accessTokenTtl > 0 && auth.refreshTokenTtl <= auth.accessTokenTtl) {
        report.warning(
          ['auth', 'refreshTokenTtl'],
          `is not longer than accessTokenTtl (${formatDuration(auth.accessTokenTtl)}): a client that refreshes when its access token expires finds its session already ended`,
        )
      }
    },
  },
]
