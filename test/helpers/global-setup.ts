import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/store/open-database.js';
import { startPostgres } from './postgres-server.js';

export const templateDatabase = 'activity_template';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string;
    postgresTemplateUrl: string;
  }
}

/**
 * Starts one PostgreSQL for the whole run and migrates a template database; each
 * test file clones its own database from it (see databases.ts). With
 * ACTIVITY_TEST_DATABASE_URL set, that server is used instead of starting one.
 */
export default async function setup(project: TestProject) {
  const external = process.env.ACTIVITY_TEST_DATABASE_URL;
  const server = external ? undefined : await startPostgres();
  const adminUrl = external ?? (server?.adminUrl as string);
  const templateUrl = withDatabase(adminUrl, templateDatabase);

  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${templateDatabase} with (force)`);
  await admin.query(`create database ${templateDatabase}`);
  await admin.end();
  const database = await openDatabase({ kind: 'postgres', url: templateUrl });
  await database.migrator.up();
  await database.close();

  project.provide('postgresAdminUrl', adminUrl);
  project.provide('postgresTemplateUrl', templateUrl);
  return () => server?.stop();
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
