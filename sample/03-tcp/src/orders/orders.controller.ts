import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { InjectServiceRegistry, type ServiceRegistry } from 'switchyard';

export interface Order {
  id: string;
  status: string;
  /** The instance that answered. */
  instance: string;
}

@Controller()
export class OrdersController {
  private viewed = 0;

  constructor(@InjectServiceRegistry() private readonly self: ServiceRegistry) {}

  @MessagePattern('orders.get')
  getOrder(@Payload() { id }: { id: string }): Order {
    return { id, status: 'shipped', instance: this.self.instance()?.id ?? 'unknown' };
  }

  /** An event: no reply; each one reaches one instance. */
  @EventPattern('orders.viewed')
  orderViewed(@Payload() _event: { id: string }): void {
    this.viewed++;
  }
}
