/**
 * One spelling per username, for what is counted or keyed by it (the sign-in limit per
 * username). Identity sources still compare the name as typed.
 */

/** "Alice ", "alice" and "ＡＬＩＣＥ" share one counter: varying the spelling does not buy more guesses. */
export const normalizeUsername = (username: string): string => username.normalize('NFKC').trim().toLowerCase()
