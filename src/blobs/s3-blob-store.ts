import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { BlobError } from './errors.js';
import { checkKey, checkPrefix } from './keys.js';
import { s3Sdk, s3Storage } from './s3-sdk.js';
import { SizeCheck, toStream } from './size-check.js';
import type { BlobInfo, BlobStore, PutOptions } from './types.js';

/** Part size of multipart uploads: S3's minimum, so memory per upload stays small. */
const PART_SIZE = 8 * 1024 * 1024;
/** Parts of one upload in flight at once. */
const QUEUE_SIZE = 4;
/** Keys per DeleteObjects request: S3's maximum. */
const DELETE_BATCH = 1000;

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/` (empty: the bucket root). */
  prefix?: string;
  /**
   * The client. Default: one configured the usual AWS way (environment, shared config files,
   * instance roles), see {@link s3ClientConfig}.
   */
  client?: S3Client;
}

/** Settings of the default S3 client; each left undefined falls back to the AWS SDK's own resolution. */
export interface S3ConnectionOptions {
  /** e.g. `http://127.0.0.1:9000` for MinIO; default `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`. */
  endpoint?: string;
  /** Default `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`. */
  region?: string;
  /**
   * `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`. Default: on when an
   * endpoint is configured (MinIO, s3rver, Ceph need it), else off; `SLIPWAY_S3_FORCE_PATH_STYLE`
   * (`true`/`false`) overrides.
   */
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * Client settings from options and the environment. Checksums are computed and validated only
 * where S3 requires them: S3-compatible stores (MinIO, s3rver, older Ceph) do not all accept the
 * newer SDK's default trailing checksums on streamed uploads.
 */
export function s3ClientConfig(
  options: S3ConnectionOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): S3ClientConfig {
  const endpoint = options.endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  const region = options.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1');
  const pathStyleEnv = env.SLIPWAY_S3_FORCE_PATH_STYLE?.trim().toLowerCase();
  const forcePathStyle =
    options.forcePathStyle ??
    (pathStyleEnv === undefined || pathStyleEnv === ''
      ? endpoint !== undefined
      : ['1', 'true', 'yes'].includes(pathStyleEnv));
  return {
    region,
    forcePathStyle,
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/**
 * Blobs as S3 objects under `<prefix>/<key>`. Puts stream through `@aws-sdk/lib-storage`'s
 * `Upload`: one PutObject for a small body, a multipart upload for a large one (aborted, with
 * its parts, when the body fails), so an object appears whole or not at all.
 */
export class S3BlobStore implements BlobStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.client = options.client ?? new (s3Sdk().S3Client)(s3ClientConfig());
    this.description = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
  }

  async put(key: string, body: Readable | Buffer | string, options: PutOptions = {}): Promise<void> {
    checkKey(key);
    const check = new SizeCheck(options.size, key);
    const source = toStream(body);
    const onSourceError = (error: Error) => check.destroy(error);
    source.once('error', onSourceError);
    source.pipe(check);
    const upload = new (s3Storage().Upload)({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.keyOf(key),
        Body: check,
        ...(options.contentType !== undefined ? { ContentType: options.contentType } : {}),
      },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    const abort = () => void upload.abort().catch(() => undefined);
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      if (options.signal?.aborted)
        throw new BlobError('storage', `cannot store ${key} in ${this.description}: aborted`);
      await upload.done();
    } catch (error) {
      source.unpipe(check);
      check.destroy();
      if (!source.destroyed) source.destroy();
      if (error instanceof BlobError) throw error;
      // A size or body failure reaches Upload as its stream's error; report that, not the SDK's wrapper.
      const cause = (check as { errored?: unknown }).errored ?? error;
      if (cause instanceof BlobError) throw cause;
      throw this.failure(`cannot store ${key}`, options.signal?.aborted ? new Error('aborted') : cause);
    } finally {
      source.off('error', onSourceError);
      options.signal?.removeEventListener('abort', abort);
    }
  }

  async get(key: string): Promise<Readable | undefined> {
    checkKey(key);
    try {
      const answer = await this.client.send(
        new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.keyOf(key) }),
      );
      const body = answer.Body;
      if (body === undefined) return Readable.from([]);
      return body instanceof Readable ? body : Readable.fromWeb(body.transformToWebStream() as never);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure(`cannot read ${key}`, error);
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    checkKey(key);
    try {
      const answer = await this.client.send(
        new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: this.keyOf(key) }),
      );
      return {
        key,
        size: answer.ContentLength ?? 0,
        ...(answer.LastModified ? { modifiedAt: answer.LastModified.getTime() } : {}),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure(`cannot read ${key}`, error);
    }
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    checkPrefix(prefix);
    const strip = this.prefix === '' ? 0 : this.prefix.length + 1;
    try {
      const pages = s3Sdk().paginateListObjectsV2(
        { client: this.client },
        { Bucket: this.bucket, Prefix: this.keyOf(prefix) },
      );
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          yield {
            key: object.Key.slice(strip),
            size: object.Size ?? 0,
            ...(object.LastModified ? { modifiedAt: object.LastModified.getTime() } : {}),
          };
        }
      }
    } catch (error) {
      throw this.failure(`cannot list ${prefix}`, error);
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    checkPrefix(prefix);
    let batch: string[] = [];
    let removed = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const keys = batch;
      batch = [];
      try {
        const answer = await this.client.send(
          new (s3Sdk().DeleteObjectsCommand)({
            Bucket: this.bucket,
            Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = answer.Errors ?? [];
        if (failed.length > 0) {
          const first = failed[0]!;
          throw new BlobError(
            'storage',
            `cannot delete ${failed.length} object(s) under ${prefix} in ${this.description}: ${first.Key ?? '?'}: ${first.Message ?? first.Code ?? 'failed'}`,
          );
        }
        removed += keys.length;
      } catch (error) {
        if (error instanceof BlobError) throw error;
        throw this.failure(`cannot delete under ${prefix}`, error);
      }
    };
    // Listing first, deleting after: deleting while paging could skip keys on some stores.
    const keys: string[] = [];
    for await (const blob of this.list(prefix)) keys.push(this.keyOf(blob.key));
    for (const key of keys) {
      batch.push(key);
      if (batch.length >= DELETE_BATCH) await flush();
    }
    await flush();
    return removed;
  }

  private keyOf(key: string): string {
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  private failure(what: string, error: unknown): BlobError {
    const name = (error as { name?: unknown } | null)?.name;
    const message = error instanceof Error ? error.message : String(error);
    return new BlobError(
      'storage',
      `${what} in ${this.description}: ${typeof name === 'string' && !message.includes(name) ? `${name}: ` : ''}${message}`,
      {
        cause: error,
      },
    );
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  // A missing bucket is a configuration error, not a missing object.
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}
