import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Injectable } from '@nestjs/common';
import { InjectServiceClient, type ServiceClient } from 'switchyard';
import { GREETER_PROTO } from '../paths.js';

interface HelloReply {
  message: string;
  instance: string;
}

type GreeterStub = grpc.Client & {
  sayHello(
    request: { name: string },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: HelloReply) => void,
  ): grpc.ClientUnaryCall;
};

const greeterPackage = grpc.loadPackageDefinition(loadSync(GREETER_PROTO)) as unknown as {
  greeter: {
    Greeter: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => GreeterStub;
  };
};

/** Calls the greeter service through the `greeter` ServiceClient. */
@Injectable()
export class GreeterCaller {
  private readonly stubs = new WeakMap<grpc.Channel, GreeterStub>();

  constructor(@InjectServiceClient('greeter') readonly greeter: ServiceClient) {}

  async sayHello(name: string): Promise<HelloReply> {
    const channel = await this.greeter.getChannel();
    let stub = this.stubs.get(channel);
    if (!stub) {
      stub = new greeterPackage.greeter.Greeter('unused', grpc.credentials.createInsecure(), {
        channelOverride: channel,
      });
      this.stubs.set(channel, stub);
    }
    const client = stub;
    return new Promise((resolve, reject) => {
      client.sayHello({ name }, { deadline: Date.now() + 2_000 }, (error, reply) =>
        error ? reject(error) : resolve(reply!),
      );
    });
  }
}
