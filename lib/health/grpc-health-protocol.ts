import * as grpc from '@grpc/grpc-js';

/**
 * The gRPC health checking protocol (`grpc.health.v1.Health`), defined in
 * code: the package ships no .proto files (tsc does not copy them to dist),
 * and the two messages are small enough to encode by hand:
 *
 *   message HealthCheckRequest  { string service = 1; }
 *   message HealthCheckResponse { ServingStatus status = 1; }
 *   enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
 */
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/** `grpc.health.v1.HealthCheckResponse.ServingStatus`. */
export enum ServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  /** Only sent by `Watch`, for a service the server does not know. */
  SERVICE_UNKNOWN = 3,
}

export interface HealthCheckRequest {
  service: string;
}

export interface HealthCheckResponse {
  status: ServingStatus;
}

/**
 * Protobuf encoding of a HealthCheckRequest (field 1, length-delimited).
 *
 * @example
 * encodeHealthCheckRequest({ service: 'orders' }); // <Buffer 0a 06 6f 72 64 65 72 73>
 */
export function encodeHealthCheckRequest(request: HealthCheckRequest): Buffer {
  const service = Buffer.from(request.service ?? '', 'utf8');
  // proto3 leaves fields with default values out.
  if (service.length === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x0a]), encodeVarint(service.length), service]);
}

/**
 * Decodes a HealthCheckRequest, skipping unknown fields.
 *
 * @example
 * decodeHealthCheckRequest(Buffer.from([0x0a, 1, 0x78])); // { service: 'x' }
 */
export function decodeHealthCheckRequest(buffer: Buffer): HealthCheckRequest {
  let service = '';
  readFields(buffer, (field, wireType, value) => {
    if (field === 1 && wireType === 2) service = (value as Buffer).toString('utf8');
  });
  return { service };
}

/**
 * Protobuf encoding of a HealthCheckResponse (field 1, varint).
 *
 * @example
 * encodeHealthCheckResponse({ status: ServingStatus.SERVING }); // <Buffer 08 01>
 */
export function encodeHealthCheckResponse(response: HealthCheckResponse): Buffer {
  if (!response.status) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x08]), encodeVarint(response.status)]);
}

/**
 * Decodes a HealthCheckResponse, skipping unknown fields.
 *
 * @example
 * decodeHealthCheckResponse(Buffer.from([0x08, 2])); // { status: ServingStatus.NOT_SERVING }
 */
export function decodeHealthCheckResponse(buffer: Buffer): HealthCheckResponse {
  let status = ServingStatus.UNKNOWN;
  readFields(buffer, (field, wireType, value) => {
    if (field === 1 && wireType === 0) status = value as number;
  });
  return { status };
}

/**
 * The grpc-js service definition of `grpc.health.v1.Health` (Check and the
 * server-streaming Watch), usable with `server.addService` and
 * `grpc.makeGenericClientConstructor`.
 *
 * @example
 * server.addService(HEALTH_SERVICE_DEFINITION, new GrpcHealthService().implementation());
 */
export const HEALTH_SERVICE_DEFINITION = {
  Check: {
    path: `/${HEALTH_SERVICE_NAME}/Check`,
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeHealthCheckRequest,
    requestDeserialize: decodeHealthCheckRequest,
    responseSerialize: encodeHealthCheckResponse,
    responseDeserialize: decodeHealthCheckResponse,
    originalName: 'check',
  },
  Watch: {
    path: `/${HEALTH_SERVICE_NAME}/Watch`,
    requestStream: false,
    responseStream: true,
    requestSerialize: encodeHealthCheckRequest,
    requestDeserialize: decodeHealthCheckRequest,
    responseSerialize: encodeHealthCheckResponse,
    responseDeserialize: decodeHealthCheckResponse,
    originalName: 'watch',
  },
} satisfies grpc.ServiceDefinition;

/** A grpc-js client stub of `grpc.health.v1.Health`. */
export interface HealthClient extends grpc.Client {
  Check(
    request: HealthCheckRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: HealthCheckResponse) => void,
  ): grpc.ClientUnaryCall;
  Watch(
    request: HealthCheckRequest,
    metadata?: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<HealthCheckResponse>;
}

/**
 * Client constructor of the health service.
 *
 * @example
 * const health = new HealthClientConstructor('127.0.0.1:50051', grpc.credentials.createInsecure()) as HealthClient;
 */
export const HealthClientConstructor = grpc.makeGenericClientConstructor(
  HEALTH_SERVICE_DEFINITION,
  'Health',
) as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => HealthClient;

function encodeVarint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value >>> 0;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** Walks the fields of a protobuf message; throws on truncated input (grpc-js turns that into INTERNAL). */
function readFields(buffer: Buffer, onField: (field: number, wireType: number, value: number | Buffer) => void): void {
  let offset = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (offset >= buffer.length) throw new Error('truncated protobuf varint');
      const byte = buffer[offset++];
      if (shift < 32) result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (offset < buffer.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    switch (wireType) {
      case 0:
        onField(field, wireType, varint());
        break;
      case 1:
        offset += 8;
        break;
      case 2: {
        const length = varint();
        if (offset + length > buffer.length) throw new Error('truncated protobuf field');
        onField(field, wireType, buffer.subarray(offset, offset + length));
        offset += length;
        break;
      }
      case 5:
        offset += 4;
        break;
      default:
        throw new Error(`unsupported protobuf wire type ${wireType}`);
    }
  }
  if (offset > buffer.length) throw new Error('truncated protobuf message');
}
