import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { InjectServiceRegistry, type ServiceRegistry } from 'switchyard';

interface HelloRequest {
  name: string;
}

@Controller()
export class GreeterController {
  constructor(@InjectServiceRegistry() private readonly self: ServiceRegistry) {}

  @GrpcMethod('Greeter', 'SayHello')
  sayHello({ name }: HelloRequest): { message: string; instance: string } {
    const id = this.self.instance()?.id ?? 'unknown';
    return { message: `Hello, ${name}!`, instance: id };
  }
}
