/**
 * The shape of a document after validation: like `T`, but every field may be missing and
 * every list item undefined, because the validator leaves out what is invalid (and keeps
 * going, to report every error in one pass).
 */
export type Loose<T> = T extends readonly (infer U)[]
  ? (Loose<U> | undefined)[]
  : T extends object
    ? { [K in keyof T]?: Loose<T[K]> }
    : T;
