/**
 * One POST to a webhook, on Node's http/https: it connects only to addresses checked before (the host is not looked up
 * again), while the Host header, TLS SNI and the certificate check still use the URL's host name. Redirects are never
 * followed, and the answer's body is read up to a limit, then the connection is dropped: a receiver cannot make the
 * worker download 400 MiB.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { ResolvedAddress } from './address-policy';

export interface PostRequest {
  url: URL;
  /** Where to connect: the addresses the host resolved to, already checked. */
  addresses: readonly ResolvedAddress[];
  headers: Record<string, string>;
  body: string;
  /** Bytes of the answer's body read at most (default 64 KiB); past them the connection is dropped. */
  maxResponseBytes?: number;
  /** Ends the request (connect, send and read). */
  signal: AbortSignal;
}

export interface PostResponse {
  status: number;
  /** Bytes of the body read (at most the limit plus one chunk). */
  bodyBytes: number;
  /** The body went on past the limit: the connection was dropped. */
  truncated: boolean;
  /** Bytes the socket received in all (headers and body): what the receiver got through. */
  socketBytes: number;
}

/** Sends one request; resolves with the status once the body ended, hit the limit or broke off. */
export type Transport = (request: PostRequest) => Promise<PostResponse>;

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;

/** The default {@link Transport}. */
export const postToWebhook: Transport = (request) =>
  new Promise<PostResponse>((resolve, reject) => {
    const limit = request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const client = request.url.protocol === 'https:' ? https : http;
    const outgoing = client.request(request.url, {
      method: 'POST',
      headers: { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) },
      // A connection of its own, closed after the answer: no pooled socket outlives the checks made for it.
      agent: false,
      lookup: pinnedLookup(request.url.hostname, request.addresses),
      signal: request.signal,
    });
    outgoing.on('error', reject);
    outgoing.on('response', (response) => {
      let bodyBytes = 0;
      let done = false;
      const finish = (truncated: boolean) => {
        if (done) return;
        done = true;
        const socketBytes = outgoing.socket?.bytesRead ?? 0;
        outgoing.destroy();
        resolve({ status: response.statusCode ?? 0, bodyBytes, truncated, socketBytes });
      };
      response.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length;
        if (bodyBytes > limit) finish(true);
      });
      response.on('end', () => finish(false));
      // A body that breaks off (or the time limit ending it) leaves the status as the answer.
      response.on('error', () => finish(true));
      response.on('close', () => finish(!response.complete));
    });
    outgoing.end(request.body);
  });

/**
 * A `lookup` for the socket that answers with the checked addresses instead of asking DNS again. Node calls it with
 * `all: true` when it tries several addresses (happy eyeballs), else for one.
 */
function pinnedLookup(hostname: string, addresses: readonly ResolvedAddress[]): LookupFunction {
  return (host, options, callback) => {
    const family = typeof options === 'number' ? options : options.family;
    const usable = addresses.filter((a) => !family || family === a.family || family === `IPv${a.family}`);
    if (host !== hostname.replace(/^\[(.*)\]$/, '$1') || usable.length === 0) {
      const error = Object.assign(new Error(`no checked address for ${host}`), { code: 'ENOTFOUND' });
      callback(error, '', 0);
    } else if (typeof options === 'object' && options.all) {
      (callback as unknown as (e: null, all: ResolvedAddress[]) => void)(null, usable);
    } else {
      callback(null, usable[0].address, usable[0].family);
    }
  };
}
