import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServingStatus } from '../../../lib/index.js';
import {
  decodeHealthCheckRequest,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse,
} from '../../../lib/health/grpc-health-protocol.js';

describe('grpc.health.v1 message codec', () => {
  it('encodes the request as protobuf field 1 (length-delimited) and leaves the default out', () => {
    expect([...encodeHealthCheckRequest({ service: 'orders' })]).toEqual([0x0a, 6, ...Buffer.from('orders')]);
    expect(encodeHealthCheckRequest({ service: '' }).length).toBe(0);
  });

  it('encodes the response as protobuf field 1 (varint)', () => {
    expect([...encodeHealthCheckResponse({ status: ServingStatus.NOT_SERVING })]).toEqual([0x08, 2]);
    expect(encodeHealthCheckResponse({ status: ServingStatus.UNKNOWN }).length).toBe(0);
  });

  it('round-trips any service name (multi-byte lengths and UTF-8 included)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400, unit: 'grapheme' }), (service) => {
        expect(decodeHealthCheckRequest(encodeHealthCheckRequest({ service }))).toEqual({ service });
      }),
    );
  });

  it('round-trips every status', () => {
    for (const status of [
      ServingStatus.UNKNOWN,
      ServingStatus.SERVING,
      ServingStatus.NOT_SERVING,
      ServingStatus.SERVICE_UNKNOWN,
    ]) {
      expect(decodeHealthCheckResponse(encodeHealthCheckResponse({ status }))).toEqual({ status });
    }
  });

  it('skips fields it does not know (newer peers may send more)', () => {
    // field 2 varint 150, field 3 fixed64, field 4 bytes "ab", field 5 fixed32, then status = SERVING
    const message = Buffer.from([
      0x10, 0x96, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x22, 2, 0x61, 0x62, 0x2d, 1, 2, 3, 4, 0x08, 1,
    ]);
    expect(decodeHealthCheckResponse(message)).toEqual({ status: ServingStatus.SERVING });
    expect(
      decodeHealthCheckRequest(Buffer.concat([message.subarray(0, 16), encodeHealthCheckRequest({ service: 'x' })])),
    ).toEqual({ service: 'x' });
  });

  it('rejects truncated input instead of reading past it', () => {
    expect(() => decodeHealthCheckRequest(Buffer.from([0x0a, 5, 0x61]))).toThrow(/truncated/);
    expect(() => decodeHealthCheckResponse(Buffer.from([0x08]))).toThrow(/truncated/);
    expect(() => decodeHealthCheckResponse(Buffer.from([0x0b]))).toThrow(/wire type/);
  });
});
