// Errors a user can cause, each with its exit code. Anything else is a bug and prints a stack only
// with --debug.
export class DmaReplayError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Bad arguments: exit 2. */
export class UsageError extends DmaReplayError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** Bad input or data (unknown trace, not a database, corrupt trace ...): exit 1. */
export class InputError extends DmaReplayError {
  constructor(message: string) {
    super(message, 1);
  }
}

/** 4: bisect found a divergence (a result, distinct from failure 1 and usage 2, so scripts can tell them apart). */
export const EXIT = { ok: 0, failure: 1, usage: 2, mismatch: 3, divergence: 4 } as const;

/** Stored data that does not match what was stored with it (a hash, a count): exit 3, like a replay mismatch. */
export class IntegrityError extends DmaReplayError {
  constructor(message: string) {
    super(message, 3);
  }
}
