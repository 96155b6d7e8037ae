/** The roles of the access model: `switch` scores and verifies, `bank` is held to its own bank, `admin` does everything. */
export type Role = 'switch' | 'bank' | 'admin';

/** Who is calling: resolved from the bearer key, or the implicit local admin in open mode. */
export interface Principal {
  name: string;
  role: Role;
  /** The bank a `bank` key is scoped to; null for other roles. */
  bankId: string | null;
}
