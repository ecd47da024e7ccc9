import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { InjectServiceRegistry, type ServiceRegistry } from 'switchyard';

interface Order {
  id: string;
  item: string;
}

/** The `orders` HTTP API; every answer says which instance gave it. */
@Controller('api/orders')
export class OrdersController {
  constructor(@InjectServiceRegistry() private readonly self: ServiceRegistry) {}

  private get instance(): string {
    return this.self.instance()?.id ?? 'unknown';
  }

  @Get(':id')
  get(@Param('id') id: string): Order & { instance: string } {
    return { id, item: `item of ${id}`, instance: this.instance };
  }

  @Post()
  @HttpCode(201)
  create(@Body() order: Order): Order & { instance: string } {
    return { ...order, instance: this.instance };
  }
}
