// A raw-bytes unary Echo service (no protobuf): the cheapest gRPC call
// there is, so balancing overhead cannot hide behind message coding.
import * as grpc from '@grpc/grpc-js';

const identity = (bytes) => bytes;

export const ECHO_SERVICE = {
  Echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
