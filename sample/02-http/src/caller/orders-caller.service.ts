import { HttpService } from '@nestjs/axios';
import { Injectable } from '@nestjs/common';
import { firstValueFrom } from 'rxjs';
import { Discovery, InjectServiceClient, type FetchDispatcher, type ServiceClient } from 'switchyard';

/** What each call returns: the instance that answered. */
export interface OrderReply {
  id: string;
  instance: string;
}

/** Calls the `orders` service the three ways switchyard offers over HTTP. */
@Injectable()
export class OrdersCaller {
  private readonly dispatcher: FetchDispatcher;

  constructor(
    @InjectServiceClient('orders') readonly orders: ServiceClient,
    private readonly http: HttpService,
    discovery: Discovery,
  ) {
    this.dispatcher = discovery.httpDispatcher();
  }

  /** 1. `client.fetch`: a path on the service. */
  async viaClientFetch(id: string): Promise<OrderReply> {
    const response = await this.orders.fetch(`/api/orders/${id}`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return (await response.json()) as OrderReply;
  }

  /** 2. The platform's fetch with the discovery dispatcher: the URL names the service. */
  async viaDispatcher(id: string): Promise<OrderReply> {
    const init = {
      method: 'POST',
      body: JSON.stringify({ id, item: 'book' }),
      headers: { 'content-type': 'application/json' },
    };
    const response = await fetch('http://orders/api/orders', { ...init, dispatcher: this.dispatcher });
    if (response.status !== 201) throw new Error(`HTTP ${response.status}`);
    return (await response.json()) as OrderReply;
  }

  /** 3. @nestjs/axios: the usual HttpService and Observables. */
  async viaAxios(id: string): Promise<OrderReply> {
    const response = await firstValueFrom(this.http.get<OrderReply>(`http://orders/api/orders/${id}`));
    return response.data;
  }
}
