import { answerOf } from '../../src/http/errors';

/**
 * How the API answers the domain error a promise rejects with, through the one mapping the
 * error handler uses: its HTTP status, error code and message.
 */
export async function answered(p: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    const answer = answerOf(err);
    if (!answer) throw err;
    return { status: answer.status, code: answer.body.error, message: answer.body.message };
  }
  throw new Error('expected the promise to reject');
}
