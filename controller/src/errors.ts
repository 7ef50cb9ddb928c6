/**
 * Typed errors. The CLI entry (cli.ts) is the one place that turns them into exit codes
 * and messages; anything else that escapes is a bug and is reported as one.
 */
export type ErrorKind = 'usage' | 'invalid-spec' | 'transport' | 'refused' | 'failed' | 'internal';

export class UplinkError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** Whether trying again may succeed (only transport errors are). */
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'UplinkError';
  }
}

export class UsageError extends UplinkError {
  constructor(message: string) {
    super('usage', message);
  }
}

/** Exit with a code and (already printed) result, without an error message. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
