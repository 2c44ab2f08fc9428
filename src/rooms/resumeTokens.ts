import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Resume tokens derived from the participant sid with a per-process key, instead of a random
 * secret stored per participant: nothing to keep (56 B a participant), and a token is only
 * good on the process that issued it, which is where the session it resumes lives.
 */
export class ResumeTokens {
  private readonly key = randomBytes(32);

  issue(sid: string): string {
    return createHmac('sha256', this.key).update(sid).digest('base64url').slice(0, 32);
  }

  verify(sid: string, token: string): boolean {
    const want = Buffer.from(this.issue(sid));
    const got = Buffer.from(token);
    return got.length === want.length && timingSafeEqual(got, want);
  }
}
