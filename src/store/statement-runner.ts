import { CompiledQuery, type Kysely } from 'kysely';

/** Sends one statement and returns its rows: the appends' hot path (see createPreparingPool). */
export type StatementRunner = <Row>(text: string, values: readonly unknown[]) => Promise<Row[]>;

/** A StatementRunner through Kysely, for a database without a quicker way (PGlite). */
export function kyselyRunner(db: Kysely<unknown>): StatementRunner {
  return async <Row>(text: string, values: readonly unknown[]) =>
    (await db.executeQuery(CompiledQuery.raw(text, [...values]))).rows as Row[];
}
