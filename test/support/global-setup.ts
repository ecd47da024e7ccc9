import { killRecordedPeers } from './peers/peer-process.js';

// Peers are started by the suites that need them through test/support/peers.
// Each is recorded with the pid of the vitest run that owns it: the setup
// kills leftovers of runs that died, the teardown kills this run's own.
export default function setup(): () => void {
  process.env.SWITCHYARD_TEST_RUN_PID = String(process.pid);
  killRecordedPeers();
  return () => {
    const leftovers = killRecordedPeers(process.pid);
    if (leftovers.length) console.warn(`[switchyard tests] killed leftover peers: ${leftovers.join(', ')}`);
  };
}
