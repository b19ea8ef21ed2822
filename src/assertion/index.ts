/**
 * `@portcullis-gateway/portcullis/assertion`: what an upstream service needs to verify the
 * identity assertion the gateway sends it (docs/upstreams.md). Depends on jose only.
 */
export {
  ASSERTION_ALGORITHMS,
  ASSERTION_HEADER,
  ASSERTION_TYP,
  createAssertionVerifier,
  verifyAssertion,
  type AssertionAlgorithm,
  type AssertionClaims,
  type AssertionVerifier,
  type AssertionVerifierOptions,
  type RequestLike,
} from './verify.js'
export { AssertionRefused, type AssertionRefusal } from './refused.js'
export type { RemoteKeysOptions } from './jwks.js'
