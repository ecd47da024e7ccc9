import { afterAll, beforeAll } from 'vitest';
import { EtcdPeer } from '../../support/peers/etcd.js';
import { describeHttpApps } from './support/http-scenarios.js';

// The same three Nest HTTP apps per platform, registered in a real etcd (one member on loopback).
let etcd: EtcdPeer | undefined;
beforeAll(async () => {
  etcd = await EtcdPeer.start();
});
afterAll(async () => {
  await etcd?.stop();
});

const backend = () => ({ name: 'etcd', options: { backend: 'etcd', backendConfig: { endpoints: etcd!.endpoints } } });
describeHttpApps('express', backend);
describeHttpApps('fastify', backend);
