import { logLineProblems, takeLogLines } from '../helpers/log-lines';

/**
 * Holds every log line the suite's apps write to the logging rules (numbers masked, service,
 * version and an ISO time on each): checked after each test, which fails on a bad line.
 */
function check(): void {
  const bad = takeLogLines()
    .map((line) => ({ line, problems: logLineProblems(line) }))
    .filter((x) => x.problems.length > 0);
  if (bad.length > 0) {
    throw new Error(`log lines break the logging rules:\n${bad.slice(0, 5).map((x) => `  ${x.problems.join('; ')}: ${x.line.trim()}`).join('\n')}`);
  }
}

afterEach(check);
afterAll(check);
