// A client generated with @hey-api/openapi-ts from the served /openapi.json, used the way an
// integration would: sign in, mint an API key, upload a report, wait for its scan, list scans,
// read findings, triage one and read it back. Every step asserts on what it got; any failure
// exits non-zero.
//
// Run by .ci/clients-check, which generates ./generated (never committed), type-checks this
// file against it with tsc and runs the result. Needs RAMPART_URL, RAMPART_ADMIN_EMAIL and
// RAMPART_ADMIN_PASSWORD.

import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';

import { createClient, createConfig } from './generated/client';
import {
  createApiKey,
  getFinding,
  getScan,
  ingest,
  listFindings,
  listScans,
  login,
  me,
  scanFindings,
  setFindingState,
} from './generated/sdk.gen';
import type { GetScanResponse } from './generated/types.gen';

const BASE = required('RAMPART_URL');
const EMAIL = required('RAMPART_ADMIN_EMAIL');
const PASSWORD = required('RAMPART_ADMIN_PASSWORD');

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function step(name: string): void {
  console.log(`typescript client: ${name}`);
}

/** The body of a generated call's answer, after checking its status. */
function expect<T>(
  answer: { data?: T; error?: unknown; response: Response },
  status: number,
): T {
  assert.equal(
    answer.response.status,
    status,
    `expected ${status}, got ${answer.response.status}: ${JSON.stringify(answer.error)}`,
  );
  assert.ok(answer.data !== undefined, 'no parsed body');
  return answer.data;
}

/** Three results, one per SARIF level: error → high, warning → medium, note → low. */
function sarifReport(target: string): string {
  const results: Array<[string, string, string, number]> = [
    ['smoke.sql-injection', 'error', 'app/db.py', 12],
    ['smoke.weak-hash', 'warning', 'app/auth.py', 40],
    ['smoke.debug-flag', 'note', 'app/settings.py', 3],
  ];
  return JSON.stringify({
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'smoke-scanner',
            version: '1.0.0',
            rules: results.map(([rule]) => ({
              id: rule,
              shortDescription: { text: `${rule} in ${target}` },
            })),
          },
        },
        results: results.map(([rule, level, path, line]) => ({
          ruleId: rule,
          level,
          message: { text: `${rule} found` },
          locations: [
            { physicalLocation: { artifactLocation: { uri: path }, region: { startLine: line } } },
          ],
        })),
      },
    ],
  });
}

async function main(): Promise<void> {
  const anonymous = createClient(createConfig({ baseUrl: BASE }));

  step('sign in');
  const answer = expect(
    await login({ client: anonymous, body: { email: EMAIL, password: PASSWORD } }),
    200,
  ).data;
  // Without MFA the password step answers the session itself.
  assert.equal(answer.mfa_required, false);
  const { token, user, expires_in } = answer;
  assert.ok(token && user && expires_in, 'a session without MFA');
  assert.equal(user.email, EMAIL);
  assert.ok(expires_in > 0);
  const signedIn = createClient(
    createConfig({ baseUrl: BASE, auth: (a) => (a.scheme === 'bearer' ? token : undefined) }),
  );

  step('create an API key');
  const created = expect(
    await createApiKey({ client: signedIn, body: { label: 'typescript-client-smoke', scopes: ['write'] } }),
    201,
  ).data;
  assert.match(created.key, /^rmp_/);
  assert.equal(created.api_key.label, 'typescript-client-smoke');
  assert.equal(created.api_key.scopes, 'write');
  // The generated security list names `x-api-key`: the client puts the key there.
  const scanner = createClient(
    createConfig({
      baseUrl: BASE,
      auth: (a) => (a.type === 'apiKey' && a.name === 'x-api-key' ? created.key : undefined),
    }),
  );
  const who = expect(await me({ client: scanner }), 200).data;
  assert.equal(who.kind, 'api_key');

  step('upload a report');
  const target = `typescript-smoke-${randomUUID().slice(0, 12)}`;
  const report = sarifReport(target);
  const accepted = expect(
    await ingest({
      client: scanner,
      body: new Blob([report], { type: 'application/octet-stream' }),
      query: { target, target_kind: 'repository' },
    }),
    202,
  );
  const scanId = accepted.data.id;
  assert.equal(accepted.data.target.name, target);
  assert.equal(accepted.data.raw_size, Buffer.byteLength(report));
  assert.equal(accepted.links.events, `/api/v1/scans/${scanId}/events`);

  step('wait for the scan to complete');
  const deadline = Date.now() + 60_000;
  let scan: GetScanResponse['data'];
  for (;;) {
    scan = expect(await getScan({ client: scanner, path: { id: scanId } }), 200).data;
    if (['complete', 'failed', 'cancelled'].includes(scan.status) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal(scan.status, 'complete', `scan ended ${scan.status}: ${scan.error}`);
  assert.equal(scan.counts.total, 3);
  assert.equal(scan.findings_new, 3);
  assert.deepEqual([scan.counts.high, scan.counts.medium, scan.counts.low], [1, 1, 1]);

  step('list scans');
  const scans = expect(await listScans({ client: scanner, query: { target_id: scan.target_id } }), 200);
  assert.equal(scans.meta.total, 1);
  assert.deepEqual(
    scans.data.map((s) => s.id),
    [scanId],
  );

  step('read findings');
  const seen = expect(await scanFindings({ client: scanner, path: { id: scanId } }), 200);
  assert.equal(seen.meta.total, 3);
  assert.deepEqual(seen.data.map((f) => f.rule_id).sort(), [
    'smoke.debug-flag',
    'smoke.sql-injection',
    'smoke.weak-hash',
  ]);
  const worst = expect(
    await listFindings({
      client: scanner,
      query: { target_id: scan.target_id, severity: ['high', 'medium'] },
    }),
    200,
  );
  assert.deepEqual(worst.data.map((f) => f.severity).sort(), ['high', 'medium']);
  const finding = worst.data.find((f) => f.severity === 'high');
  assert.ok(finding, 'no high finding');
  assert.equal(finding.rule_id, 'smoke.sql-injection');
  assert.equal(finding.location.path, 'app/db.py');
  assert.equal(finding.triage.state, 'untriaged');

  step('triage a finding');
  const note = 'parameterised in the ORM layer; not reachable';
  const triaged = expect(
    await setFindingState({
      client: scanner,
      path: { id: finding.id },
      body: { state: 'false_positive', note },
    }),
    200,
  ).data;
  assert.equal(triaged.triage.state, 'false_positive');

  step('read the triage back');
  const again = expect(await getFinding({ client: scanner, path: { id: finding.id } }), 200).data;
  assert.equal(again.triage.state, 'false_positive');
  assert.equal(again.triage.note, note);
  const dismissed = expect(
    await listFindings({
      client: scanner,
      query: { target_id: scan.target_id, triage_state: 'false_positive' },
    }),
    200,
  );
  assert.deepEqual(
    dismissed.data.map((f) => f.id),
    [finding.id],
  );

  step("an error answer is the contract's envelope");
  const missing = await getFinding({ client: scanner, path: { id: randomUUID() } });
  assert.equal(missing.response.status, 404);
  assert.equal(missing.error?.code, 'NOT_FOUND');
  assert.equal(missing.error?.statusCode, 404);

  console.log('typescript client: all steps passed');
}

main().catch((err: unknown) => {
  console.error('typescript client smoke FAILED:', err);
  process.exit(1);
});
