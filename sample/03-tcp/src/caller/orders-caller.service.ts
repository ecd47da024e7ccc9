import { Inject, Injectable } from '@nestjs/common';
import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { InjectServiceClient, type ServiceClient } from 'switchyard';
import type { Order } from '../orders/orders.controller.js';

/** Calls `orders` through the ClientsModule client: each send and emit picks an instance. */
@Injectable()
export class OrdersCaller {
  constructor(
    @Inject('ORDERS') private readonly orders: ClientProxy,
    /** The same client the proxy sends through: its endpoints, for the launcher's log. */
    @InjectServiceClient('orders') readonly client: ServiceClient,
  ) {}

  getOrder(id: string): Promise<Order> {
    return firstValueFrom(this.orders.send<Order>('orders.get', { id }));
  }

  /** An event: handled by one instance, never sent twice. */
  async orderViewed(id: string): Promise<void> {
    await lastValueFrom(this.orders.emit('orders.viewed', { id }), { defaultValue: undefined });
  }
}
