/** Browser sessions of the web UI (migration `0007_sessions`); read and written by `sessions.ts`. */
export interface SessionsTable {
  /** Hex SHA-256 of the session id; the id itself lives only in the browser's cookie. */
  hash: string;
  token_id: number;
  created_at: number;
}
