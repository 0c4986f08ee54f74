import { ActivityError } from '../../src/domain/errors.js';

/** The ActivityError `fn` throws; fails the test when it returns or throws something else. */
export function activityErrorFrom(fn: () => unknown): ActivityError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ActivityError) return error;
    throw new Error(`expected an ActivityError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected an ActivityError, but nothing was thrown');
}

/** The ActivityError `promise` rejects with; fails the test when it resolves or rejects otherwise. */
export async function activityErrorFromAsync(promise: Promise<unknown>): Promise<ActivityError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ActivityError) return error;
    throw new Error(`expected an ActivityError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected an ActivityError, but the promise resolved');
}
