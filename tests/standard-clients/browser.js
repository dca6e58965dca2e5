// GraphiQL and Swagger UI in a real browser: Debian's Chromium driven by Playwright, against a
// running server (RAMPART_URL, signed in as RAMPART_ADMIN_EMAIL / RAMPART_ADMIN_PASSWORD).
// Run by tests/integration/standard_clients.rs; exits non-zero, saying which step failed, when
// a page does not work: a failed step, an uncaught page error or any console error (a
// Content-Security-Policy violation is reported as one) fails the run.
'use strict';

const { chromium } = require('playwright-core');

const base = process.env.RAMPART_URL;
const email = process.env.RAMPART_ADMIN_EMAIL;
const password = process.env.RAMPART_ADMIN_PASSWORD;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
// Long enough for a loaded 2-core machine; a step that needs longer has failed.
const STEP_TIMEOUT_MS = 60_000;

let step = 'starting';
function begin(what) {
  step = what;
  console.log(`browser: ${what}`);
}

async function main() {
  if (!base || !email || !password) {
    throw new Error('RAMPART_URL, RAMPART_ADMIN_EMAIL and RAMPART_ADMIN_PASSWORD are required');
  }
  begin(`launching ${executablePath}`);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const problems = [];
  try {
    const context = await browser.newContext({ baseURL: base });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') {
        problems.push(`console error during "${step}": ${message.text()}`);
      }
    });
    page.on('pageerror', (error) => problems.push(`page error during "${step}": ${error}`));
    page.on('requestfailed', (request) => {
      const reason = request.failure()?.errorText;
      // A request still open when the page navigates away is aborted; any other failure
      // (net::ERR_BLOCKED_BY_CSP among them) is a problem.
      if (reason !== 'net::ERR_ABORTED') {
        problems.push(`request failed during "${step}": ${request.url()} ${reason}`);
      }
    });
    // Every Content-Security-Policy violation, whether or not the browser logs it.
    await context.exposeFunction('rampartViolation', (text) =>
      problems.push(`CSP violation during "${step}": ${text}`),
    );
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) =>
        window.rampartViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`),
      );
    });

    begin('signing in (POST /api/v1/auth/login sets the session cookie)');
    const login = await page.request.post('/api/v1/auth/login', { data: { email, password } });
    if (login.status() !== 200) {
      throw new Error(`login answered ${login.status()}: ${await login.text()}`);
    }
    const cookies = await context.cookies(base);
    if (!cookies.some((c) => c.name === 'token')) {
      throw new Error(`login set no session cookie (cookies: ${cookies.map((c) => c.name)})`);
    }

    begin('opening GraphiQL at /graphql');
    const graphiql = await page.goto('/graphql');
    if (graphiql.status() !== 200) throw new Error(`/graphql answered ${graphiql.status()}`);
    await page.locator('.graphiql-container').waitFor();

    begin('opening the documentation explorer: it lists the query root type, QueryRoot');
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const explorer = page.locator('.graphiql-doc-explorer');
    await explorer.waitFor();
    const queryType = explorer.locator('a.graphiql-doc-explorer-type-name', { hasText: /^QueryRoot$/ });
    try {
      await queryType.waitFor();
    } catch (error) {
      throw new Error(`the explorer shows no QueryRoot type; it shows: ${await explorer.innerText()}`);
    }
    await queryType.click();
    await explorer.getByText('serverInfo', { exact: true }).first().waitFor();

    begin('running a query in GraphiQL (signed in through the cookie)');
    await page.evaluate(() => {
      const editor = document.querySelector('.graphiql-query-editor .CodeMirror');
      editor.CodeMirror.setValue('{ serverInfo { name } me { user { email } } }');
    });
    await page.locator('.graphiql-execute-button').click();
    const response = page.locator('.graphiql-response .CodeMirror');
    try {
      await response.getByText(`"email": "${email}"`).waitFor();
    } catch (error) {
      throw new Error(`the query's result is not shown; the response pane has: ${await response.innerText()}`);
    }
    const result = await response.innerText();
    if (!result.includes('"name": "rampart"') || result.includes('"errors"')) {
      throw new Error(`unexpected result: ${result}`);
    }

    begin('opening Swagger UI at /docs and running GET /api/v1/auth/me with "Try it out"');
    const docs = await page.goto('/docs');
    if (docs.status() !== 200) throw new Error(`/docs answered ${docs.status()}`);
    const operation = page.locator('#operations-auth-me');
    await operation.locator('.opblock-summary').first().click();
    // This server's Swagger UI starts with "Try it out" on (the button then reads "Cancel").
    const tryOut = operation.locator('.try-out__btn');
    if ((await tryOut.innerText()).trim() === 'Try it out') await tryOut.click();
    await operation.locator('.try-out__btn', { hasText: 'Cancel' }).waitFor();
    await operation.getByRole('button', { name: 'Execute' }).click();
    const status = operation.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor();
    const code = (await status.innerText()).trim();
    const body = await operation.locator('.live-responses-table .response-col_description pre').first().innerText();
    if (code !== '200' || !body.includes(email)) {
      throw new Error(`Try it out answered ${code}: ${body}`);
    }
    begin('done');
  } finally {
    await browser.close();
  }
  if (problems.length > 0) {
    throw new Error(`the pages reported problems:\n  ${problems.join('\n  ')}`);
  }
}

main().then(
  () => console.log('browser: GraphiQL and Swagger UI work'),
  (error) => {
    console.error(`browser: failed while ${step}: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
  },
);
